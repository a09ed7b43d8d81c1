#include "proto/duration.hpp"

#include <array>
#include <charconv>
#include <cstdint>

namespace odd::proto {

namespace {

struct Unit {
  std::string_view name;
  std::int64_t millis;
};

// Longest names first where one is a prefix of another ("ms" before "m").
constexpr std::array<Unit, 4> kUnits{{{"h", 3'600'000}, {"ms", 1}, {"m", 60'000}, {"s", 1000}}};
constexpr std::int64_t kMax = 30LL * 24 * 3'600'000;

int rank(std::string_view unit) {
  if (unit == "h") return 0;
  if (unit == "m") return 1;
  if (unit == "s") return 2;
  return 3;
}

Status bad(std::string_view text) {
  return invalid_argument("expected a duration such as \"90s\" or \"30m\", got \"" +
                          std::string(text) + "\"");
}

}  // namespace

Result<Millis> parse_duration(std::string_view text) {
  std::string_view rest = text;
  std::int64_t total = 0;
  int last_rank = -1;
  if (rest.empty()) return bad(text);
  while (!rest.empty()) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc() || end == rest.data() || value < 0) return bad(text);
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (rest.starts_with(u.name)) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return bad(text);
    int r = rank(unit->name);
    if (r <= last_rank) return bad(text);
    last_rank = r;
    rest.remove_prefix(unit->name.size());
    if (value > kMax / unit->millis) return bad(text);
    total += value * unit->millis;
    if (total > kMax) return bad(text);
  }
  if (total == 0) return bad(text);
  return Millis(total);
}

std::string format_duration(Millis duration) {
  std::int64_t ms = duration.count();
  if (ms <= 0) return "0s";
  std::string out;
  for (const auto& unit :
       {Unit{"h", 3'600'000}, Unit{"m", 60'000}, Unit{"s", 1000}, Unit{"ms", 1}}) {
    if (ms >= unit.millis) {
      out += std::to_string(ms / unit.millis);
      out += unit.name;
      ms %= unit.millis;
    }
  }
  return out;
}

}  // namespace odd::proto
