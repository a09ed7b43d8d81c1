#pragma once
// The zstd-framed log file of one output stream (DESIGN §7): a sequence of pairs, each a complete
// zstd frame holding the stream's bytes since the previous pair, then a skippable frame with the
// stream's raw byte and line totals (before masking) up to the end of that frame, so `zstd -dc`
// gives the stored bytes and a restarted daemon knows how much it already has. LogFileWriter owns
// its descriptor and is used by one strand; LogFileReader follows a file that may still grow and
// is used by one strand. Neither is thread-safe; many readers of one file are fine.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::daemon {

// What a totals frame records: raw bytes and lines of the stream, counted before masking, whose
// (masked) text lies in the file up to the end of the frame.
struct LogTotals {
  std::uint64_t bytes = 0;
  std::uint64_t lines = 0;
  friend bool operator==(const LogTotals&, const LogTotals&) = default;
};

// The totals frame: magic kLogTotalsMagic, u32 LE payload size kLogTotalsPayload, then u32
// version kLogFormatVersion, u64 bytes, u64 lines, all little endian.
inline constexpr std::uint32_t kLogTotalsMagic = 0x184D2A50;
inline constexpr std::uint32_t kLogFormatVersion = 1;
inline constexpr std::size_t kLogTotalsPayload = 4 + 8 + 8;
inline constexpr std::size_t kLogTotalsFrameSize = 8 + kLogTotalsPayload;
// Limits that keep a reader's memory bounded whatever the file holds: a data frame may hold at
// most kLogMaxFrameContent bytes (the writer refuses more; a reader rejects such a frame).
inline constexpr std::size_t kLogMaxFrameContent = std::size_t{8} << 20;

class LogFileWriter {
 public:
  // Creates `path` (O_EXCL, mode 0640) for a new stream and writes an empty pair, so the file is
  // a valid zstd file from the start. already_exists when it exists, permission_denied, not_found
  // for a missing directory, internal otherwise; all name the path.
  static Result<std::unique_ptr<LogFileWriter>> create(const std::filesystem::path& path,
                                                       int level = 1);
  // Opens an existing log to append to it after a restart: scans it pair by pair, truncates a
  // torn tail (a partial frame, a data frame without its totals, anything unreadable) and leaves
  // totals() at the last totals stored. not_found, permission_denied, internal;
  // failed_precondition, the file left untouched, for a totals frame of another format version
  // or when more than one pair's worth of non-zero bytes would be cut (not a torn write).
  static Result<std::unique_ptr<LogFileWriter>> reopen(const std::filesystem::path& path,
                                                       int level = 1);
  ~LogFileWriter();
  LogFileWriter(const LogFileWriter&) = delete;
  LogFileWriter& operator=(const LogFileWriter&) = delete;

  // Appends one data frame holding `data` and the totals frame recording `totals`, with one
  // write(). On a failed write the file is cut back to its previous end and the error (naming the
  // file) is returned; invalid_argument for data over kLogMaxFrameContent or after close().
  Status append(std::string_view data, LogTotals totals);
  // Closes the descriptor. Idempotent; internal if close(2) fails.
  Status close();

  const std::filesystem::path& path() const { return path_; }
  // The totals of the last pair in the file (zero for a new file).
  LogTotals totals() const { return totals_; }
  // The file's size: the end of the last complete pair.
  std::uint64_t size() const { return size_; }
  // Bytes reopen() cut off as a torn tail (zero for a file from create()).
  std::uint64_t truncated_bytes() const { return truncated_; }

 private:
  struct Ctx;
  LogFileWriter(std::filesystem::path path, int fd, int level);

  std::filesystem::path path_;
  int fd_;
  std::unique_ptr<Ctx> ctx_;
  std::string out_;
  LogTotals totals_;
  std::uint64_t size_ = 0;
  std::uint64_t truncated_ = 0;
};

// Reads a log file frame by frame, also while it is being written. Only complete frames are
// read; an incomplete tail is left for a later call. Memory: one compressed frame and the zstd
// window (about 2 MiB for frames of 1 MiB), whatever the file's size.
class LogFileReader {
 public:
  // not_found or permission_denied naming the file.
  static Result<std::unique_ptr<LogFileReader>> open(const std::filesystem::path& path);
  ~LogFileReader();
  LogFileReader(const LogFileReader&) = delete;
  LogFileReader& operator=(const LogFileReader&) = delete;

  // Appends at most `max` (> 0) decompressed bytes to `out` and returns how many; 0 when no
  // complete frame follows yet (call again once the file grew). Skippable frames are skipped;
  // ours update totals(). invalid_argument naming the file and offset for bytes that are not a
  // zstd frame, a corrupt frame or one over the limits; internal for a failed read.
  Result<std::size_t> read(std::string& out, std::size_t max);

  // The last totals frame read past (zero before the first).
  LogTotals totals() const { return totals_; }
  // The file offset up to which frames were consumed completely.
  std::uint64_t offset() const { return offset_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Ctx;
  LogFileReader(std::filesystem::path path, int fd);
  Result<bool> next_frame();

  std::filesystem::path path_;
  int fd_;
  std::unique_ptr<Ctx> ctx_;
  std::string frame_;            // the current data frame, compressed and complete
  std::size_t frame_pos_ = 0;    // how much of it the decompressor consumed
  std::uint64_t frame_out_ = 0;  // bytes it produced so far
  bool in_frame_ = false;
  std::uint64_t offset_ = 0;
  std::uint64_t stalled_size_ = 0;  // the file size at which the tail was last found incomplete
  bool stalled_ = false;
  LogTotals totals_;
};

// What a stored log holds, for summaries and the artifacts tar.
struct LogFileInfo {
  LogTotals totals;  // of the last complete pair
  // Decompressed size of the complete pairs' frames, as their headers declare it (a frame that
  // does not decode counts 0; the reader reports it).
  std::uint64_t data_bytes = 0;
  std::uint64_t valid_bytes = 0;  // file bytes those pairs take
  std::uint64_t file_bytes = 0;   // the file's size (more than valid_bytes after a torn tail)
};

// Scans a stored log without changing it. not_found, permission_denied, internal;
// invalid_argument naming the file for content that is not a log file.
Result<LogFileInfo> inspect_log_file(const std::filesystem::path& path);

// Decompresses the complete frames of `path` into `sink`, in pieces of at most 64 KiB; stops at
// the first sink error and returns it. Errors as LogFileReader::read plus not_found.
Status decompress_log_file(const std::filesystem::path& path,
                           const std::function<Status(std::string_view)>& sink);

}  // namespace odd::daemon
