#pragma once
// Log-stream decoding with no I/O (DESIGN §7): Demuxer splits dockerd's multiplexed attach/logs
// byte stream into stdout, stderr and system-error payload, and LineSplitter turns one stream's
// bytes into lines. Both are byte-buffer state machines fed whatever each read returned, so a
// frame header, a payload or a line may be split anywhere. Neither is thread-safe: one instance
// per stream, used only by the strand that reads it.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::engine {

enum class StreamId : std::uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kSystemErr = 3 };

// "stdin", "stdout", "stderr" or "systemerr".
std::string_view stream_name(StreamId stream);

// Frames are an 8-byte header (stream id, three zero bytes, big-endian payload size) followed by
// the payload. Payload is handed to the sink straight from the caller's buffer, never copied; only
// a partial header is kept between feeds.
class Demuxer {
 public:
  static constexpr std::size_t kHeaderSize = 8;

  // `raw` is the container's Tty setting: then there are no headers and every byte is stdout.
  explicit Demuxer(bool raw) : raw_(raw) {}

  // Calls `sink(StreamId, std::string_view piece)` with each non-empty payload piece as soon as
  // it arrives; one frame may come in several pieces. Returns invalid_argument, naming the stream
  // offset and the byte, for a stream id above 3 or a non-zero padding byte; after that every
  // feed returns the same error and emits nothing.
  template <class Sink>
  Status feed(std::string_view bytes, Sink&& sink);

  // True when no frame header or payload is partly consumed: false at EOF means a cut stream.
  bool at_frame_boundary() const { return header_len_ == 0 && remaining_ == 0; }

  // Payload bytes emitted so far for `stream` (headers not counted).
  std::uint64_t bytes(StreamId stream) const { return totals_[static_cast<std::size_t>(stream)]; }

  // Everything consumed so far, headers included: the offset error messages refer to.
  std::uint64_t offset() const { return offset_; }

  bool raw() const { return raw_; }

 private:
  // Consumes up to the rest of a frame header from the front of `bytes`, checking each byte as
  // it arrives; sets error_ on a bad byte. Returns how many bytes it consumed.
  std::size_t take_header(std::string_view bytes);

  void count(StreamId stream, std::size_t n) {
    totals_[static_cast<std::size_t>(stream)] += n;
    offset_ += n;
  }

  bool raw_;
  std::array<unsigned char, kHeaderSize> header_{};
  std::size_t header_len_ = 0;
  StreamId stream_ = StreamId::kStdout;
  std::size_t remaining_ = 0;
  std::uint64_t offset_ = 0;
  std::array<std::uint64_t, 4> totals_{};
  Status error_;
};

template <class Sink>
Status Demuxer::feed(std::string_view bytes, Sink&& sink) {
  if (!error_.ok()) return error_;
  if (raw_) {
    if (!bytes.empty()) {
      count(StreamId::kStdout, bytes.size());
      sink(StreamId::kStdout, bytes);
    }
    return ok_status();
  }
  while (!bytes.empty()) {
    if (remaining_ == 0) {
      bytes.remove_prefix(take_header(bytes));
      if (!error_.ok()) return error_;
      continue;
    }
    const std::string_view piece = bytes.substr(0, remaining_);
    remaining_ -= piece.size();
    bytes.remove_prefix(piece.size());
    count(stream_, piece.size());
    sink(stream_, piece);
  }
  return ok_status();
}

// Splits one stream's bytes on '\n'; nothing else is rewritten ("\r\n" keeps its '\r'). The sink
// is called as `sink(std::string_view piece, bool complete)`: complete is true when the piece
// ended at a '\n' (not included), false when it did not: a line longer than max_line is cut into
// max_line-byte pieces, all but its last marked false, and the unterminated tail from finish() is
// false too. So piece + (complete ? "\n" : "") over all calls reproduces the input exactly, and
// the pieces do not depend on how the input was split into pushes.
class LineSplitter {
 public:
  static constexpr std::size_t kDefaultMaxLine = std::size_t{1} << 20;

  // A max_line of 0 is taken as 1.
  explicit LineSplitter(std::size_t max_line = kDefaultMaxLine)
      : max_line_(std::max<std::size_t>(max_line, 1)) {}

  // Emits every line that `bytes` completes and keeps (copies) the unfinished rest, at most
  // max_line bytes. Pieces of lines that lie wholly inside `bytes` point into `bytes`.
  template <class Sink>
  void push(std::string_view bytes, Sink&& sink);

  // Emits the pending unterminated line, if any, with complete = false, and resets.
  template <class Sink>
  void finish(Sink&& sink);

  std::size_t max_line() const { return max_line_; }

  // Bytes of an unfinished line held between pushes; never more than max_line.
  std::size_t pending_bytes() const { return partial_.size(); }

 private:
  std::size_t max_line_;
  std::string partial_;
};

template <class Sink>
void LineSplitter::push(std::string_view bytes, Sink&& sink) {
  while (!bytes.empty()) {
    // A '\n' at index `room` or earlier ends a line of at most max_line bytes; any other byte
    // there means the line is longer and gets cut at max_line.
    const std::size_t room = max_line_ - partial_.size();
    const std::size_t window = room < bytes.size() ? room + 1 : bytes.size();
    const std::size_t newline = bytes.substr(0, window).find('\n');
    const bool complete = newline != std::string_view::npos;
    if (!complete && bytes.size() <= room) {
      partial_.append(bytes);
      return;
    }
    const std::size_t take = complete ? newline : room;
    if (partial_.empty()) {
      sink(bytes.substr(0, take), complete);
    } else {
      partial_.append(bytes.substr(0, take));
      sink(std::string_view(partial_), complete);
      partial_.clear();
    }
    bytes.remove_prefix(complete ? take + 1 : take);
  }
}

template <class Sink>
void LineSplitter::finish(Sink&& sink) {
  if (partial_.empty()) return;
  sink(std::string_view(partial_), false);
  partial_.clear();
}

}  // namespace odd::engine
