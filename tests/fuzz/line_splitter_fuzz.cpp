// Fuzzes LineSplitter with a small max_line: the input is pushed in pieces chosen by its first
// bytes; the pieces must rebuild the input exactly and match a one-shot push. Violations trap.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/demux.hpp"

namespace {

using odd::engine::LineSplitter;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

using Pieces = std::vector<std::pair<std::string, bool>>;

struct Collector {
  std::size_t max_line;
  Pieces pieces;
  void operator()(std::string_view piece, bool complete) {
    check(piece.size() <= max_line);
    check(piece.find('\n') == std::string_view::npos);
    pieces.emplace_back(std::string(piece), complete);
  }
};

// Pieces whose lengths cycle through `plan`: each byte b is a push of (b >> 1) bytes, so empty
// pushes happen too.
Pieces push_in_pieces(std::size_t max_line, std::string_view plan, std::string_view input) {
  LineSplitter splitter(max_line);
  Collector sink{max_line, {}};
  std::size_t step = 0;
  std::size_t idle = 0;
  while (!input.empty()) {
    const auto b = plan.empty() ? 0xffu : static_cast<unsigned char>(plan[step++ % plan.size()]);
    std::size_t n = std::min<std::size_t>(b >> 1, input.size());
    if (n == 0 && ++idle > plan.size()) n = 1;
    if (n != 0) idle = 0;
    splitter.push(input.substr(0, n), sink);
    input.remove_prefix(n);
    check(splitter.pending_bytes() <= max_line);
  }
  splitter.finish(sink);
  check(splitter.pending_bytes() == 0);
  return std::move(sink.pieces);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t max_line = (data[0] & 0x0fu) + 1;
  const std::size_t plan_size = std::min<std::size_t>(data[0] >> 4, size - 1);
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::string_view plan = all.substr(1, plan_size);
  const std::string_view input = all.substr(1 + plan_size);

  const Pieces pieced = push_in_pieces(max_line, plan, input);

  LineSplitter once(max_line);
  Collector whole{max_line, {}};
  once.push(input, whole);
  once.finish(whole);
  check(pieced == whole.pieces);

  std::string rebuilt;
  for (std::size_t i = 0; i < pieced.size(); ++i) {
    const auto& [piece, complete] = pieced[i];
    rebuilt += piece;
    if (complete) {
      rebuilt += '\n';
    } else if (i + 1 < pieced.size()) {
      // An incomplete piece other than the final tail is a forced cut: exactly max_line bytes.
      check(piece.size() == max_line);
    } else {
      check(!piece.empty());
    }
  }
  check(rebuilt == input);
  return 0;
}
