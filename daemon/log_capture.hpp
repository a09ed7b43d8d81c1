#pragma once
// LogCapture: everything that happens to one container attempt's output (DESIGN §7). Bytes are
// split into lines per stream (at most 1 MiB; longer ones are cut, and a secret across such a
// cut is not found), masked line by line (so a secret across write() pieces is), scanned for the
// line protocol (progress, suites, set-output on stdout), appended to a zstd-framed file per
// stream (daemon/log_file.hpp) and kept as the last lines for failure reports. Owned by the job
// that runs the container; used on the daemon's I/O strand only.

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "daemon/container_engine.hpp"
#include "proto/api_types.hpp"

namespace odd::daemon {

class LogHub;

// What the line scan reports, on the I/O strand, in line order.
struct CaptureListener {
  std::function<void(const proto::Progress&)> on_progress;
  std::function<void(const proto::SuiteResult&)> on_suite;
  std::function<void(const std::string& key, const std::string& value)> on_output;
};

struct CaptureOptions {
  std::filesystem::path dir;   // runs/<id>/jobs/<key>/
  std::string container_name;  // file names: <container>-stdout-<stamp>.log.zst
  std::string stamp;           // "20261122-142030Z" (proto::format_compact_utc)
  // Values to mask as "***"; empty ones are ignored. A value of several lines is masked line by
  // line (lines are the masking unit), each of its non-empty lines on its own.
  std::vector<std::string> secrets;
  std::size_t tail_lines = 200;
  std::size_t tail_line_bytes = 4096;  // a longer line is kept in the tail cut to this
  std::size_t frame_bytes = 1 << 20;   // a zstd frame is closed at least every this many bytes
  std::chrono::milliseconds flush_interval{1000};  // ... and this long after data was pending
  int zstd_level = 1;
  // Continue the files of an earlier daemon (same dir, name, stamp): they are reopened (a torn
  // tail cut off; a missing one is created) and write() drops, per stream, as many leading bytes
  // as they already hold, so output read again from the start is stored exactly once.
  bool resume = false;
};

class LogCapture {
 public:
  // Creates both files (O_EXCL: an existing file is already_exists; not_found for a missing
  // dir; permission_denied). `hub` (may be null) is told of every frame written, so followers of
  // these files wake up. Starts a timer on `executor` that closes a frame at least once a second
  // while data is pending. The listener's callbacks must not call write() or close().
  static Result<std::unique_ptr<LogCapture>> open(asio::any_io_executor executor,
                                                  CaptureOptions options, CaptureListener listener,
                                                  LogHub* hub);
  ~LogCapture();

  // Takes one piece of output. Never blocks on followers; only the disk can slow it. Errors
  // (disk full) are kept and returned by close(); that stream's file then stays as it was (its
  // totals still true) while output is still scanned. Ignored after close().
  void write(OutputStream stream, std::string_view bytes);
  // Closes the current frames (a job state change) so readers see everything so far.
  void flush();
  // Ends both streams: the unterminated last line is scanned, the last frames and totals are
  // written, files closed, followers told the logs are complete. Idempotent; the destructor
  // calls it. Returns the first write error (naming the file), later calls the same.
  Status close();

  const std::filesystem::path& stdout_path() const;
  const std::filesystem::path& stderr_path() const;
  // The last `tail_lines` lines of both streams as received (masked), oldest first, each tagged
  // with its stream.
  std::vector<std::pair<OutputStream, std::string>> tail() const;
  // Raw bytes received per stream, before masking (with resume: including those stored before).
  std::uint64_t bytes(OutputStream stream) const;

 private:
  struct Impl;
  explicit LogCapture(std::shared_ptr<Impl> impl);
  // Shared only with the flush timer's handler, which holds it weakly.
  std::shared_ptr<Impl> impl_;
};

}  // namespace odd::daemon
