// Fuzzes Demuxer: the input is fed in pieces chosen by its first bytes, and the result must match
// a one-shot feed of the same bytes and a naive reference decoder. Violations trap.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/demux.hpp"

namespace {

using odd::Status;
using odd::engine::Demuxer;
using odd::engine::StreamId;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

using Runs = std::vector<std::pair<StreamId, std::string>>;

void append_run(Runs& runs, StreamId stream, std::string_view piece) {
  if (piece.empty()) return;
  if (!runs.empty() && runs.back().first == stream) {
    runs.back().second.append(piece);
  } else {
    runs.emplace_back(stream, std::string(piece));
  }
}

struct Outcome {
  Runs runs;
  Status status;
  bool at_boundary = false;
  std::uint64_t totals[4] = {};
};

// Pieces whose lengths cycle through `plan`: each byte b is a piece of (b >> 1) + 1 bytes,
// preceded by an empty feed when b is odd.
Outcome feed_in_pieces(bool raw, std::string_view plan, std::string_view stream) {
  Demuxer demux(raw);
  Outcome out;
  auto feed = [&](std::string_view piece) {
    const std::size_t runs_before = out.runs.size();
    const std::size_t last_before = out.runs.empty() ? 0 : out.runs.back().second.size();
    const Status s = demux.feed(piece, [&](StreamId id, std::string_view p) {
      check(!p.empty());
      check(p.data() >= piece.data() && p.data() + p.size() <= piece.data() + piece.size());
      check(raw ? id == StreamId::kStdout : static_cast<unsigned>(id) <= 3);
      append_run(out.runs, id, p);
    });
    if (!out.status.ok()) {
      check(s == out.status);
      check(out.runs.size() == runs_before);
      check(out.runs.empty() || out.runs.back().second.size() == last_before);
    }
    out.status = s;
  };
  std::size_t step = 0;
  while (!stream.empty()) {
    const auto b = plan.empty() ? 0xffu : static_cast<unsigned char>(plan[step++ % plan.size()]);
    if (b & 1u) feed({});
    const std::size_t n = std::min<std::size_t>((b >> 1) + 1, stream.size());
    feed(stream.substr(0, n));
    stream.remove_prefix(n);
  }
  out.at_boundary = demux.at_frame_boundary();
  for (unsigned i = 0; i < 4; ++i) out.totals[i] = demux.bytes(static_cast<StreamId>(i));
  return out;
}

Outcome feed_at_once(bool raw, std::string_view stream) {
  Demuxer demux(raw);
  Outcome out;
  out.status =
      demux.feed(stream, [&](StreamId id, std::string_view p) { append_run(out.runs, id, p); });
  out.at_boundary = demux.at_frame_boundary();
  for (unsigned i = 0; i < 4; ++i) out.totals[i] = demux.bytes(static_cast<StreamId>(i));
  return out;
}

// Naive decoder of a whole buffer: what a correct demuxer must produce, and whether it fails.
std::pair<Runs, bool> reference(bool raw, std::string_view stream) {
  Runs runs;
  if (raw) {
    append_run(runs, StreamId::kStdout, stream);
    return {runs, false};
  }
  std::size_t i = 0;
  while (i < stream.size()) {
    for (std::size_t k = 0; k < 4 && i + k < stream.size(); ++k) {
      const auto byte = static_cast<unsigned char>(stream[i + k]);
      if (k == 0 ? byte > 3 : byte != 0) return {runs, true};
    }
    if (i + 8 > stream.size()) break;
    std::size_t size = 0;
    for (std::size_t k = 4; k < 8; ++k)
      size = size * 256 + static_cast<unsigned char>(stream[i + k]);
    append_run(runs, static_cast<StreamId>(stream[i]), stream.substr(i + 8, size));
    i += 8 + size;
  }
  return {runs, false};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const bool raw = (data[0] & 0x80u) != 0;
  const std::size_t plan_size = std::min<std::size_t>(data[0] & 0x07u, size - 1);
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::string_view plan = all.substr(1, plan_size);
  const std::string_view stream = all.substr(1 + plan_size);

  const Outcome pieced = feed_in_pieces(raw, plan, stream);
  const Outcome whole = feed_at_once(raw, stream);
  check(pieced.runs == whole.runs);
  check(pieced.status == whole.status);
  check(pieced.at_boundary == whole.at_boundary);
  for (unsigned i = 0; i < 4; ++i) check(pieced.totals[i] == whole.totals[i]);

  const auto [expected, fails] = reference(raw, stream);
  check(whole.runs == expected);
  check(whole.status.ok() != fails);
  check(fails || whole.status.code() == odd::Code::kOk);
  if (fails) check(whole.status.code() == odd::Code::kInvalidArgument);
  std::uint64_t emitted = 0;
  for (const auto& run : whole.runs) emitted += run.second.size();
  check(emitted == whole.totals[0] + whole.totals[1] + whole.totals[2] + whole.totals[3]);
  return 0;
}
