#include "proto/line_protocol.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace odd::proto {

namespace {

std::string_view without_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

bool is_identifier(std::string_view s) {
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (s.empty() || !alpha(s.front())) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9') || c == '-'; });
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::string_view skip_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

std::optional<Progress> parse_progress(std::string_view line) {
  constexpr std::string_view kPrefix = "PB> ";
  if (!line.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = line.substr(kPrefix.size());
  const std::size_t space = rest.find(' ');
  const std::string_view fraction = rest.substr(0, space);
  const std::size_t slash = fraction.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto done = number(fraction.substr(0, slash));
  auto total = number(fraction.substr(slash + 1));
  if (!done || !total || *done > *total) return std::nullopt;
  Progress progress{*done, *total, {}};
  if (space != std::string_view::npos) progress.label = skip_spaces(rest.substr(space));
  return progress;
}

std::optional<SuiteResult> parse_suite(std::string_view line) {
  SuiteResult suite;
  if (line.starts_with("PASS ")) {
    suite.status = SuiteStatus::kPass;
  } else if (line.starts_with("FAIL ")) {
    suite.status = SuiteStatus::kFail;
  } else if (line.starts_with("SKIP ")) {
    suite.status = SuiteStatus::kSkip;
  } else {
    return std::nullopt;
  }
  std::string_view name = line.substr(4);
  constexpr std::string_view kXfail = " [xfail]";
  if (name.ends_with(kXfail)) {
    name.remove_suffix(kXfail.size());
    suite.expect = "xfail";
  }
  name = skip_spaces(name);
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  if (name.empty()) return std::nullopt;
  suite.name = name;
  return suite;
}

}  // namespace

std::optional<std::pair<std::string, std::string>> parse_set_output(std::string_view line) {
  constexpr std::string_view kPrefix = "::set-output name=";
  line = without_cr(line);
  if (!line.starts_with(kPrefix)) return std::nullopt;
  line.remove_prefix(kPrefix.size());
  const std::size_t separator = line.find("::");
  if (separator == std::string_view::npos) return std::nullopt;
  const std::string_view key = line.substr(0, separator);
  if (!is_identifier(key)) return std::nullopt;
  return std::pair<std::string, std::string>(key, line.substr(separator + 2));
}

LineInfo classify_line(std::string_view line) {
  LineInfo info;
  line = without_cr(line);
  if (line.size() >= 4 && line[0] == '[' && line[1] == 'v' && line[2] >= '0' && line[2] <= '3' &&
      line[3] == ']') {
    info.verbosity = line[2] - '0';
    line.remove_prefix(4);
    if (line.starts_with(' ')) line.remove_prefix(1);
  }
  if ((info.progress = parse_progress(line))) {
    info.kind = LineKind::kProgress;
  } else if ((info.suite = parse_suite(line))) {
    info.kind = LineKind::kSuite;
  } else if ((info.output = parse_set_output(line))) {
    info.kind = LineKind::kSetOutput;
  }
  return info;
}

}  // namespace odd::proto
