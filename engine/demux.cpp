#include "engine/demux.hpp"

#include <cstdio>
#include <string>

namespace odd::engine {
namespace {

std::string hex_byte(unsigned char byte) {
  char text[5];
  std::snprintf(text, sizeof text, "0x%02x", static_cast<unsigned>(byte));
  return text;
}

}  // namespace

std::string_view stream_name(StreamId stream) {
  switch (stream) {
    case StreamId::kStdin:
      return "stdin";
    case StreamId::kStdout:
      return "stdout";
    case StreamId::kStderr:
      return "stderr";
    case StreamId::kSystemErr:
      return "systemerr";
  }
  return "unknown";
}

std::size_t Demuxer::take_header(std::string_view bytes) {
  const std::size_t n = std::min(kHeaderSize - header_len_, bytes.size());
  for (std::size_t i = 0; i < n; ++i) {
    const auto byte = static_cast<unsigned char>(bytes[i]);
    // Checked byte by byte so a bad header fails on the read that brings it, not a later one.
    if (header_len_ == 0 && byte > static_cast<unsigned char>(StreamId::kSystemErr)) {
      error_ = invalid_argument("multiplexed log stream: invalid stream id byte " + hex_byte(byte) +
                                " at offset " + std::to_string(offset_) +
                                " (expected 0-3; is the container a TTY?)");
      return i;
    }
    if (header_len_ >= 1 && header_len_ <= 3 && byte != 0) {
      error_ = invalid_argument("multiplexed log stream: non-zero padding byte " + hex_byte(byte) +
                                " at offset " + std::to_string(offset_) +
                                " (frame header starts at offset " +
                                std::to_string(offset_ - header_len_) + ")");
      return i;
    }
    header_[header_len_++] = byte;
    ++offset_;
  }
  if (header_len_ == kHeaderSize) {
    stream_ = static_cast<StreamId>(header_[0]);
    remaining_ = (std::size_t{header_[4]} << 24) | (std::size_t{header_[5]} << 16) |
                 (std::size_t{header_[6]} << 8) | std::size_t{header_[7]};
    header_len_ = 0;
  }
  return n;
}

}  // namespace odd::engine
