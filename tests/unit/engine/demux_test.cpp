#include "engine/demux.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace odd::engine {
namespace {

struct Frame {
  std::uint8_t stream;
  std::string payload;
};

// Output as (stream, bytes) runs: adjacent pieces of one stream are merged, so how a decoder
// chooses to cut its pieces does not matter, only which bytes went where and in what order.
using Runs = std::vector<std::pair<StreamId, std::string>>;

void append_run(Runs& runs, StreamId stream, std::string_view piece) {
  if (piece.empty()) return;
  if (!runs.empty() && runs.back().first == stream) {
    runs.back().second.append(piece);
  } else {
    runs.emplace_back(stream, std::string(piece));
  }
}

std::string encode(const std::vector<Frame>& frames) {
  std::string out;
  for (const Frame& f : frames) {
    const auto size = static_cast<std::uint32_t>(f.payload.size());
    out.push_back(static_cast<char>(f.stream));
    out.append(3, '\0');
    out.push_back(static_cast<char>((size >> 24) & 0xff));
    out.push_back(static_cast<char>((size >> 16) & 0xff));
    out.push_back(static_cast<char>((size >> 8) & 0xff));
    out.push_back(static_cast<char>(size & 0xff));
    out.append(f.payload);
  }
  return out;
}

// A deliberately naive decoder of a whole, well-formed buffer: the expectation.
Runs reference_decode(std::string_view buffer) {
  Runs runs;
  std::size_t i = 0;
  while (i + 8 <= buffer.size()) {
    const auto u = [&](std::size_t k) { return static_cast<std::size_t>(std::uint8_t(buffer[k])); };
    const std::size_t size = (u(i + 4) << 24) + (u(i + 5) << 16) + (u(i + 6) << 8) + u(i + 7);
    append_run(runs, static_cast<StreamId>(buffer[i]), buffer.substr(i + 8, size));
    i += 8 + size;
  }
  return runs;
}

struct Decoded {
  Runs runs;
  Status status;
  bool empty_piece = false;
  bool at_boundary = false;
};

Decoded decode_in_pieces(std::string_view buffer, const std::vector<std::size_t>& cuts,
                         bool raw = false) {
  Demuxer demux(raw);
  Decoded out;
  std::size_t begin = 0;
  auto feed = [&](std::string_view piece) {
    const Status s = demux.feed(piece, [&](StreamId id, std::string_view p) {
      if (p.empty()) out.empty_piece = true;
      append_run(out.runs, id, p);
    });
    if (!s.ok() && out.status.ok()) out.status = s;
  };
  for (std::size_t cut : cuts) {
    feed(buffer.substr(begin, cut - begin));
    begin = cut;
  }
  feed(buffer.substr(begin));
  out.at_boundary = demux.at_frame_boundary();
  return out;
}

std::vector<Frame> mixed_frames() {
  std::string big(260, '\0');  // 260 > 255 exercises the second size byte
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  return {
      {1, "hello"}, {2, ""},          {2, "e"},      {1, big}, {3, "sys"},
      {0, ""},      {2, "warning\n"}, {1, "x\ny\n"}, {1, ""},  {0, "in"},
  };
}

}  // namespace

TEST_CASE("a multi-frame buffer split into two reads at every position decodes like the whole") {
  const std::string buffer = encode(mixed_frames());
  const Runs expected = reference_decode(buffer);
  REQUIRE(expected.size() == 7);
  std::size_t mismatches = 0;
  std::size_t first_bad = 0;
  for (std::size_t cut = 0; cut <= buffer.size(); ++cut) {
    const Decoded got = decode_in_pieces(buffer, {cut});
    if (got.runs != expected || !got.status.ok() || got.empty_piece || !got.at_boundary) {
      if (mismatches++ == 0) first_bad = cut;
    }
  }
  INFO("first failing cut: ", first_bad);
  CHECK(mismatches == 0);
}

TEST_CASE("a multi-frame buffer split into three reads at every pair of positions decodes alike") {
  const std::string buffer = encode(mixed_frames());
  const Runs expected = reference_decode(buffer);
  std::size_t mismatches = 0;
  std::pair<std::size_t, std::size_t> first_bad;
  for (std::size_t a = 0; a <= buffer.size(); ++a) {
    for (std::size_t b = a; b <= buffer.size(); ++b) {
      const Decoded got = decode_in_pieces(buffer, {a, b});
      if (got.runs != expected || !got.status.ok() || got.empty_piece || !got.at_boundary) {
        if (mismatches++ == 0) first_bad = {a, b};
      }
    }
  }
  INFO("first failing cuts: ", first_bad.first, ", ", first_bad.second);
  CHECK(mismatches == 0);
}

TEST_CASE("a multi-frame buffer fed one byte at a time decodes like the whole") {
  const std::string buffer = encode(mixed_frames());
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < buffer.size(); ++i) cuts.push_back(i);
  const Decoded got = decode_in_pieces(buffer, cuts);
  CHECK(got.status.ok());
  CHECK_FALSE(got.empty_piece);
  CHECK(got.at_boundary);
  CHECK(got.runs == reference_decode(buffer));
}

TEST_CASE("a frame header split at every position is decoded once, complete") {
  const std::string buffer = encode({{2, "payload"}});
  for (std::size_t cut = 1; cut < Demuxer::kHeaderSize; ++cut) {
    CAPTURE(cut);
    Demuxer demux(false);
    std::vector<std::pair<StreamId, std::string>> calls;
    auto sink = [&](StreamId id, std::string_view p) { calls.emplace_back(id, std::string(p)); };
    REQUIRE(demux.feed(std::string_view(buffer).substr(0, cut), sink).ok());
    CHECK(calls.empty());
    CHECK_FALSE(demux.at_frame_boundary());
    REQUIRE(demux.feed(std::string_view(buffer).substr(cut), sink).ok());
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].first == StreamId::kStderr);
    CHECK(calls[0].second == "payload");
    CHECK(demux.at_frame_boundary());
  }
}

TEST_CASE("stdout, stderr and system-error frames keep their interleaving order") {
  const std::string buffer =
      encode({{1, "out1 "}, {2, "err1 "}, {1, "out2 "}, {3, "sys "}, {2, "err2"}, {1, "out3"}});
  const Decoded got = decode_in_pieces(buffer, {});
  const Runs expected = {{StreamId::kStdout, "out1 "}, {StreamId::kStderr, "err1 "},
                         {StreamId::kStdout, "out2 "}, {StreamId::kSystemErr, "sys "},
                         {StreamId::kStderr, "err2"},  {StreamId::kStdout, "out3"}};
  CHECK(got.status.ok());
  CHECK(got.runs == expected);
}

TEST_CASE("zero-length frames are accepted and emit nothing") {
  const std::string buffer = encode({{1, ""}, {2, ""}, {3, ""}, {1, "a"}, {2, ""}});
  Demuxer demux(false);
  int calls = 0;
  std::string out;
  const Status s = demux.feed(buffer, [&](StreamId id, std::string_view p) {
    ++calls;
    CHECK(id == StreamId::kStdout);
    out.append(p);
  });
  CHECK(s.ok());
  CHECK(calls == 1);
  CHECK(out == "a");
  CHECK(demux.at_frame_boundary());
  CHECK(demux.offset() == buffer.size());
}

TEST_CASE("a 1 MiB payload arrives intact, piece by piece as read, straight from the input") {
  std::string payload(std::size_t{1} << 20, '\0');
  std::uint32_t x = 12345;
  for (char& c : payload) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  const std::string buffer = encode({{2, payload}, {1, "tail"}});
  constexpr std::size_t kRead = 65536;
  Demuxer demux(false);
  std::string err;
  std::string out;
  std::size_t pieces = 0;
  bool outside_input = false;
  for (std::size_t begin = 0; begin < buffer.size(); begin += kRead) {
    const std::string_view read = std::string_view(buffer).substr(begin, kRead);
    const Status s = demux.feed(read, [&](StreamId id, std::string_view p) {
      if (p.data() < read.data() || p.data() + p.size() > read.data() + read.size()) {
        outside_input = true;
      }
      if (id == StreamId::kStderr) {
        ++pieces;
        err.append(p);
      } else {
        out.append(p);
      }
    });
    REQUIRE(s.ok());
  }
  CHECK(err == payload);
  CHECK(out == "tail");
  CHECK_FALSE(outside_input);
  // The header takes 8 bytes of the first read, so the payload straddles 17 reads.
  CHECK(pieces == 17);
  CHECK(demux.bytes(StreamId::kStderr) == payload.size());
}

TEST_CASE("the payload size is read as a big-endian 32-bit count") {
  std::string header("\x01\0\0\0\x01\x02\x03\x04", 8);
  Demuxer demux(false);
  std::uint64_t got = 0;
  auto sink = [&](StreamId, std::string_view p) { got += p.size(); };
  REQUIRE(demux.feed(header, sink).ok());
  const std::string chunk(0x01020304 - 1, 'z');
  REQUIRE(demux.feed(chunk, sink).ok());
  CHECK_FALSE(demux.at_frame_boundary());
  REQUIRE(demux.feed("z", sink).ok());
  CHECK(demux.at_frame_boundary());
  CHECK(got == 0x01020304);
}

TEST_CASE("an invalid stream id fails with invalid_argument naming its offset and byte") {
  std::string buffer = encode({{1, "hello"}});  // 13 bytes
  buffer += encode({{1, "next"}});
  buffer[13] = '\x07';
  Demuxer demux(false);
  std::string out;
  auto sink = [&](StreamId, std::string_view p) { out.append(p); };
  const Status s = demux.feed(buffer, sink);
  CHECK(s.code() == Code::kInvalidArgument);
  CHECK(s.message().find("offset 13") != std::string::npos);
  CHECK(s.message().find("0x07") != std::string::npos);
  CHECK(out == "hello");

  SUBCASE("and stays failed with the same error, emitting nothing more") {
    const Status again = demux.feed(encode({{1, "more"}}), sink);
    CHECK(again == s);
    CHECK(out == "hello");
  }
}

TEST_CASE("a non-zero padding byte fails naming its offset, even when it arrives in a later read") {
  for (std::size_t pad = 1; pad <= 3; ++pad) {
    for (std::size_t cut = 0; cut <= 13 + Demuxer::kHeaderSize; ++cut) {
      CAPTURE(pad);
      CAPTURE(cut);
      std::string buffer = encode({{2, "hello"}, {1, "x"}});
      buffer[13 + pad] = '\x80';
      Demuxer demux(false);
      Status s = demux.feed(std::string_view(buffer).substr(0, cut), [](StreamId, auto) {});
      if (s.ok()) s = demux.feed(std::string_view(buffer).substr(cut), [](StreamId, auto) {});
      CHECK(s.code() == Code::kInvalidArgument);
      CHECK(s.message().find("padding byte 0x80 at offset " + std::to_string(13 + pad)) !=
            std::string::npos);
      CHECK(demux.bytes(StreamId::kStdout) == 0);
      CHECK(demux.bytes(StreamId::kStderr) == 5);
    }
  }
}

TEST_CASE("a TTY stream passes every byte to stdout unchanged") {
  // Bytes that would be a bad header in multiplexed mode.
  const std::string first("\x09\x01\x02 raw\r\n", 9);
  const std::string second = encode({{2, "looks framed"}});
  Demuxer demux(true);
  std::string out;
  auto sink = [&](StreamId id, std::string_view p) {
    CHECK(id == StreamId::kStdout);
    out.append(p);
  };
  CHECK(demux.feed(first, sink).ok());
  CHECK(demux.feed("", sink).ok());
  CHECK(demux.feed(second, sink).ok());
  CHECK(out == first + second);
  CHECK(demux.at_frame_boundary());
  CHECK(demux.bytes(StreamId::kStdout) == out.size());
  CHECK(demux.bytes(StreamId::kStderr) == 0);
}

TEST_CASE("at_frame_boundary tells a complete stream from one cut mid-frame") {
  const std::string buffer = encode({{1, "abc"}, {2, "defg"}});
  const std::string_view view(buffer);
  for (std::size_t end = 0; end <= buffer.size(); ++end) {
    CAPTURE(end);
    Demuxer demux(false);
    REQUIRE(demux.feed(view.substr(0, end), [](StreamId, std::string_view) {}).ok());
    const bool boundary = end == 0 || end == 11 || end == buffer.size();
    CHECK(demux.at_frame_boundary() == boundary);
  }
  Demuxer fresh(false);
  CHECK(fresh.at_frame_boundary());
}

TEST_CASE("payload byte totals are kept per stream, headers excluded") {
  const std::string buffer = encode(mixed_frames());
  Demuxer demux(false);
  REQUIRE(demux.feed(buffer, [](StreamId, std::string_view) {}).ok());
  std::uint64_t expected[4] = {};
  for (const Frame& f : mixed_frames()) expected[f.stream] += f.payload.size();
  CHECK(demux.bytes(StreamId::kStdin) == expected[0]);
  CHECK(demux.bytes(StreamId::kStdout) == expected[1]);
  CHECK(demux.bytes(StreamId::kStderr) == expected[2]);
  CHECK(demux.bytes(StreamId::kSystemErr) == expected[3]);
  CHECK(demux.offset() == buffer.size());
}

}  // namespace odd::engine
