#pragma once
// LogHub: which log files are being written right now, so that followers of a log know whether
// to wait for more and are woken when a frame lands (DESIGN §7). Writers (LogCapture) register a
// file, notify after each frame and close it; cursors from open_log_cursor() wait on it. The hub
// holds no log data: followers read the files themselves, so one that stops reading costs the
// writer nothing. Used on the daemon's I/O strand only; it must outlive its captures and cursors.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "daemon/control_service.hpp"

namespace odd::daemon {

namespace asio = boost::asio;

class LogHub {
 public:
  LogHub() = default;
  LogHub(const LogHub&) = delete;
  LogHub& operator=(const LogHub&) = delete;

  // `path` is being written from now on (live). Registering a live file again changes nothing.
  void open(const std::filesystem::path& path);
  // A frame of `path` was written: wakes its waiters. Ignored for a file that is not live.
  void notify(const std::filesystem::path& path);
  // The writer of `path` is done: wakes its waiters and forgets it (it is no longer live).
  void close(const std::filesystem::path& path);

  bool live(const std::filesystem::path& path) const;
  // A counter that moves on every notify() and close(); read it before reading a file and pass
  // it to wait(), so a frame written in between is never waited for.
  std::uint64_t version() const { return version_; }

  // Completes when one of `files` was notified or closed after `seen` (at once if that already
  // happened or one is not live), or after `timeout`: ok. cancelled when the awaiting coroutine
  // is cancelled. The waiting timer runs on `executor`.
  asio::awaitable<Status> wait(asio::any_io_executor executor,
                               std::span<const std::filesystem::path> files, std::uint64_t seen,
                               std::chrono::milliseconds timeout);

  // Sizes of what the hub holds, for tests and metrics: live files and parked waiters.
  std::size_t live_files() const { return files_.size(); }
  std::size_t waiters() const;

 private:
  struct Waiter;
  struct File {
    std::uint64_t changed = 0;
    std::vector<Waiter*> waiters;
  };
  static std::string key(const std::filesystem::path& path);
  void wake(File& file);

  std::unordered_map<std::string, File> files_;
  std::uint64_t version_ = 0;
};

// How long a follower sleeps between looks at its files when no notification comes (a writer
// in another process, a missed wake-up): the fallback poll.
inline constexpr std::chrono::milliseconds kLogFollowPoll{500};

// A cursor over stored and, when `follow`, still growing logs, decompressed. One file: its bytes
// in pieces of at most 64 KiB. Two files (stdout, stderr: stream=both): whole lines of the two,
// interleaved as they become readable, never a line split between pieces of different streams.
// At the end of what is written it ends (an empty piece) unless it follows a file the hub says
// is live; then it waits for the hub (or polls every kLogFollowPoll). not_found naming a file
// that does not exist; invalid_argument for no file or more than two.
Result<std::unique_ptr<ByteCursor>> open_log_cursor(asio::any_io_executor executor, LogHub& hub,
                                                    std::vector<std::filesystem::path> files,
                                                    bool follow);

// A job's log as it stands: the (stdout, stderr) files of one attempt's containers and exec
// steps so far, in the order they were opened, and whether more may come (the attempt runs or has
// yet to start).
struct JobLogView {
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> pairs;
  bool open = false;
};

// A cursor over every pair `view()` lists, one after the other, each read as open_log_cursor()
// reads it (`select`: stdout, stderr or both). When `follow`, a live pair is followed to its end,
// and while the view is open the cursor waits for the next pair: the writer holds `marker` open on
// the hub while the attempt runs, and notifies it when it adds a pair; before the attempt starts
// (open, marker not held) the view is polled every kLogFollowPoll. `view` is called on each
// turn. not_found naming a file that does not exist: from here for the first pair, from next() for
// later ones.
Result<std::unique_ptr<ByteCursor>> open_job_log_cursor(asio::any_io_executor executor, LogHub& hub,
                                                        std::function<JobLogView()> view,
                                                        std::filesystem::path marker,
                                                        LogSelect select, bool follow);

}  // namespace odd::daemon
