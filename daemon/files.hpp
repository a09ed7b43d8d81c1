#pragma once
// POSIX file helpers for the daemon's state on disk (DESIGN §9): errors that name the path, an
// owned descriptor, and files replaced atomically. Blocking; callers choose the thread.

#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.hpp"

namespace odd::daemon {

// An open file descriptor, closed on destruction.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  // close(2) can report a deferred write error, so its result matters for files just written.
  int close() { return ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

// Writes all of `data` to `fd`, retrying short writes; errors name `path`.
Status write_all(int fd, std::string_view data, const std::filesystem::path& path);

// fsync of a directory, so that the entries just created, renamed or removed in it are durable.
Status fsync_dir(const std::filesystem::path& dir);

// Whether write_file_atomic() makes the new content durable before it returns.
enum class Sync { kYes, kNo };

// mkdir -p with `mode` for the directories it creates; existing directories are left as they are.
Status make_dirs(const std::filesystem::path& dir, mode_t mode = 0750);

// Replaces `target` through a temporary file and a rename, so that readers and a crash of this
// process see either the old or the new content, never a mix. With Sync::kYes the data is made
// durable before the rename and the rename before it returns, so a crash of the machine does too.
Status write_file_atomic(const std::filesystem::path& target, std::string_view data,
                         mode_t mode = 0640, Sync sync = Sync::kYes);

// The whole content of `path`.
Result<std::string> read_file(const std::filesystem::path& path);

}  // namespace odd::daemon
