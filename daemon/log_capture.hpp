#pragma once
// LogCapture: everything that happens to one container attempt's output (DESIGN §7). Bytes are
// masked (secret values, across piece boundaries), split into lines per stream, scanned for the
// line protocol (progress, suites, set-output on stdout), appended to a zstd-framed file per
// stream and kept as the last lines for failure reports. Owned by the job that runs the
// container; used on the daemon's I/O strand only.

#include <boost/asio/any_io_executor.hpp>
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
  std::filesystem::path dir;         // runs/<id>/jobs/<key>/
  std::string container_name;        // file names: <container>-stdout-<stamp>.log.zst
  std::string stamp;                 // "20261122-142030Z" (proto::format_compact_utc)
  std::vector<std::string> secrets;  // values to mask as "***"; empty ones are ignored
  std::size_t tail_lines = 200;
  std::size_t frame_bytes = 1 << 20;  // a zstd frame is closed at least every this many bytes
  int zstd_level = 1;
};

class LogCapture {
 public:
  // Creates both files (O_EXCL: an existing file is already_exists). `hub` (may be null) is told
  // of every frame written, so followers of these files wake up. Starts a timer on `executor`
  // that closes a frame at least once a second while data is pending.
  static Result<std::unique_ptr<LogCapture>> open(asio::any_io_executor executor,
                                                  CaptureOptions options, CaptureListener listener,
                                                  LogHub* hub);
  ~LogCapture();

  // Takes one piece of output. Never blocks on followers; only the disk can slow it. Errors
  // (disk full) are kept and returned by close(); output is then still scanned.
  void write(OutputStream stream, std::string_view bytes);
  // Closes the current frames (a job state change) so readers see everything so far.
  void flush();
  // Ends both streams: the unterminated last line is scanned, the last frames and totals are
  // written, files closed, followers told the logs are complete. Idempotent.
  Status close();

  const std::filesystem::path& stdout_path() const;
  const std::filesystem::path& stderr_path() const;
  // The last `tail_lines` lines of both streams as received (masked), oldest first, each tagged
  // with its stream.
  std::vector<std::pair<OutputStream, std::string>> tail() const;
  // Raw bytes received per stream, before masking.
  std::uint64_t bytes(OutputStream stream) const;

 private:
  struct Impl;
  explicit LogCapture(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace odd::daemon
