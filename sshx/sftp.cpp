#include "sshx/sftp.hpp"

#include <fcntl.h>
#include <libssh2_sftp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "sshx/exec.hpp"

namespace odd::sshx {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr Millis kHelperTimeout{60'000};
constexpr std::size_t kMaxMoveCommand = 64 * 1024;
constexpr Millis kShieldedWrite{60'000};  // one write call, however slow the peer

Deadline deadline_of(const TransferOptions& options) {
  if (options.timeout.count() <= 0) return Deadline::max();
  return Clock::now() + options.timeout;
}

std::string random_suffix() {
  static std::mt19937_64 engine(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  std::uint64_t bits = engine();
  for (int i = 0; i < 12; ++i, bits >>= 4) text.push_back(kHex[bits & 15]);
  return text;
}

constexpr std::string_view kTempMark = ".odd-tmp-";

// The temporary name beside `path` that an upload writes before its final move: suffixed with
// `tag`, or with a random suffix when there is none.
std::string temp_beside(const std::string& path, const std::string& tag) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  return dir + "." + name + std::string(kTempMark) + (tag.empty() ? random_suffix() : tag);
}

bool valid_tag(std::string_view tag) {
  return tag.size() <= 64 && std::all_of(tag.begin(), tag.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
         });
}

std::string join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// One SFTP subsystem channel on a session, and the calls odd makes on it.
class Sftp {
 public:
  Sftp(std::shared_ptr<Session> session, Deadline deadline)
      : session_(std::move(session)), deadline_(deadline) {}
  ~Sftp() {
    if (sftp_ != nullptr) {
      // Only when stop() did not run: on a usable session this may leave the channel to the
      // session's own cleanup, on a broken one it frees at once.
      libssh2_sftp_shutdown(sftp_);
      session_->channel_closed();
    }
  }

  // Shuts the subsystem channel down, even after a cancellation of the caller.
  asio::awaitable<void> stop() {
    if (sftp_ == nullptr) co_return;
    co_await asio::this_coro::reset_cancellation_state();
    if (session_->usable()) {
      LIBSSH2_SFTP* sftp = sftp_;
      auto done = co_await session_->call([sftp] { return libssh2_sftp_shutdown(sftp); },
                                          Clock::now() + std::chrono::seconds(10));
      if (done && *done == 0) {
        sftp_ = nullptr;
        session_->channel_closed();
      }
    }
  }
  Sftp(const Sftp&) = delete;
  Sftp& operator=(const Sftp&) = delete;

  Session& session() { return *session_; }
  const std::shared_ptr<Session>& session_ptr() { return session_; }
  Deadline deadline() const { return deadline_; }

  asio::awaitable<Status> start() {
    LIBSSH2_SESSION* raw = session_->raw();
    auto started = co_await session_->call([raw] { return libssh2_sftp_init(raw); }, deadline_);
    if (!started) co_return started.error();
    if (*started == nullptr) co_return session_->last_error("starting SFTP");
    sftp_ = *started;
    session_->channel_opened();
    co_return ok_status();
  }

  // The error of the last failed call on `path`, the host named.
  Status error(std::string_view what, const std::string& path) const {
    if (libssh2_session_last_errno(session_->raw()) != LIBSSH2_ERROR_SFTP_PROTOCOL) {
      return session_->last_error(std::string(what) + " " + path);
    }
    const unsigned long code = libssh2_sftp_last_error(sftp_);
    std::string message = session_->describe() + ": " + std::string(what) + " " + path + ": ";
    switch (code) {
      case LIBSSH2_FX_NO_SUCH_FILE:
      case LIBSSH2_FX_NO_SUCH_PATH:
        return not_found(message + "no such file or directory");
      case LIBSSH2_FX_PERMISSION_DENIED:
      case LIBSSH2_FX_WRITE_PROTECT:
        return permission_denied(message + "permission denied");
      case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
      case LIBSSH2_FX_QUOTA_EXCEEDED:
        return failed_precondition(message + "no space left");
      case LIBSSH2_FX_FILE_ALREADY_EXISTS:
        return already_exists(message + "already exists");
      default:
        return failed_precondition(message + "SFTP error " + std::to_string(code));
    }
  }

  asio::awaitable<Result<LIBSSH2_SFTP_ATTRIBUTES>> stat(const std::string& path, bool follow) {
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    LIBSSH2_SFTP* sftp = sftp_;
    const int type = follow ? LIBSSH2_SFTP_STAT : LIBSSH2_SFTP_LSTAT;
    auto rc = co_await session_->call(
        [&] {
          return libssh2_sftp_stat_ex(sftp, path.data(), static_cast<unsigned>(path.size()), type,
                                      &attrs);
        },
        deadline_);
    if (!rc) co_return rc.error();
    if (*rc != 0) co_return error("reading", path);
    co_return attrs;
  }

  asio::awaitable<Result<LIBSSH2_SFTP_HANDLE*>> open(const std::string& path, unsigned long flags,
                                                     long mode, int type) {
    LIBSSH2_SFTP* sftp = sftp_;
    auto handle = co_await session_->call(
        [&] {
          return libssh2_sftp_open_ex(sftp, path.data(), static_cast<unsigned>(path.size()), flags,
                                      mode, type);
        },
        deadline_);
    if (!handle) co_return handle.error();
    if (*handle == nullptr) co_return error("opening", path);
    co_return *handle;
  }

  // Closes and frees `handle`. On a broken session the handle is still freed (libssh2 frees it
  // with its queued requests once the close fails on the dead connection) and the session's
  // failure is returned.
  asio::awaitable<Status> close(LIBSSH2_SFTP_HANDLE* handle, const std::string& path) {
    if (!session_->usable()) {
      libssh2_sftp_close_handle(handle);
      co_return session_->failure();
    }
    auto rc =
        co_await session_->call([handle] { return libssh2_sftp_close_handle(handle); }, deadline_);
    if (!rc) co_return rc.error();
    if (*rc != 0) co_return error("closing", path);
    co_return ok_status();
  }

  // Creates `path` with `mode` unless a directory is there already.
  asio::awaitable<Status> mkdir(const std::string& path, long mode) {
    LIBSSH2_SFTP* sftp = sftp_;
    auto rc = co_await session_->call(
        [&] {
          return libssh2_sftp_mkdir_ex(sftp, path.data(), static_cast<unsigned>(path.size()), mode);
        },
        deadline_);
    if (!rc) co_return rc.error();
    if (*rc == 0) co_return ok_status();
    Status failed = error("creating directory", path);
    auto existing = co_await stat(path, true);
    if (existing && LIBSSH2_SFTP_S_ISDIR(existing->permissions)) co_return ok_status();
    co_return failed;
  }

  // mkdir -p: every missing directory of `path`.
  asio::awaitable<Status> mkdirs(const std::string& path) {
    std::string prefix = path.starts_with("/") ? "/" : "";
    std::size_t start = prefix.size();
    while (start < path.size()) {
      std::size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      const std::string part = path.substr(start, slash - start);
      if (!part.empty()) {
        prefix = join(prefix, part);
        if (Status made = co_await mkdir(prefix, 0755); !made.ok()) co_return made;
      }
      start = slash + 1;
    }
    co_return ok_status();
  }

  asio::awaitable<Status> chmod(const std::string& path, unsigned mode) {
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
    attrs.permissions = mode;
    LIBSSH2_SFTP* sftp = sftp_;
    auto rc = co_await session_->call(
        [&] {
          return libssh2_sftp_stat_ex(sftp, path.data(), static_cast<unsigned>(path.size()),
                                      LIBSSH2_SFTP_SETSTAT, &attrs);
        },
        deadline_);
    if (!rc) co_return rc.error();
    if (*rc != 0) co_return error("setting the mode of", path);
    co_return ok_status();
  }

  asio::awaitable<Status> unlink(const std::string& path) {
    LIBSSH2_SFTP* sftp = sftp_;
    auto rc = co_await session_->call(
        [&] {
          return libssh2_sftp_unlink_ex(sftp, path.data(), static_cast<unsigned>(path.size()));
        },
        deadline_);
    if (!rc) co_return rc.error();
    if (*rc != 0) co_return error("removing", path);
    co_return ok_status();
  }

  // Renames `from` to `to` when `to` does not exist; false when the server refused (OpenSSH
  // refuses an existing target: the caller then moves it over exec).
  asio::awaitable<Result<bool>> rename(const std::string& from, const std::string& to) {
    LIBSSH2_SFTP* sftp = sftp_;
    auto rc = co_await session_->call(
        [&] {
          return libssh2_sftp_rename_ex(sftp, from.data(), static_cast<unsigned>(from.size()),
                                        to.data(), static_cast<unsigned>(to.size()),
                                        LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
                                            LIBSSH2_SFTP_RENAME_NATIVE);
        },
        deadline_);
    if (!rc) co_return rc.error();
    co_return *rc == 0;
  }

  LIBSSH2_SFTP* raw() const { return sftp_; }

 private:
  std::shared_ptr<Session> session_;
  Deadline deadline_;
  LIBSSH2_SFTP* sftp_ = nullptr;
};

// Moves each temporary file over its target with `mv -f`, as few exec calls as the command
// length allows.
asio::awaitable<Status> move_over(const std::shared_ptr<Session>& session,
                                  const std::vector<std::pair<std::string, std::string>>& moves) {
  std::string script;
  auto flush = [&]() -> asio::awaitable<Status> {
    if (script.empty()) co_return ok_status();
    auto moved = co_await exec_capture(session, script + "true", kHelperTimeout);
    script.clear();
    co_return moved ? ok_status() : moved.error().with_context("moving uploaded files in place");
  };
  for (const auto& [from, to] : moves) {
    script += "mv -f -- " + shell_quote(from) + " " + shell_quote(to) + " && ";
    if (script.size() > kMaxMoveCommand) {
      if (Status s = co_await flush(); !s.ok()) co_return s;
    }
  }
  co_return co_await flush();
}

// An upload in progress: the temporary files written so far and where each goes.
struct Staged {
  std::string tag;                                         // TransferOptions::tag
  std::vector<std::pair<std::string, std::string>> files;  // temp, target
  std::string writing;                                     // a temp file being written
  // The tree's directories and their modes, applied once the files are in place: a read-only
  // directory must stay writable until then.
  std::vector<std::pair<std::string, unsigned>> directories;
};

// Whether the caller was cancelled. Checked before each chunk: once cancelled, awaiting any
// operation or coroutine throws, so a cancellation that lands between two chunks must end the
// loop before the next co_await.
bool cancel_requested(const asio::cancellation_state& state) {
  return state.cancelled() != asio::cancellation_type::none;
}

// Sends data[0, size) to the open remote file `h`, checking for cancellation between writes.
asio::awaitable<Status> send_chunk(Sftp& sftp, LIBSSH2_SFTP_HANDLE* h, const std::string& target,
                                   const std::string& temp, const char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const auto state = co_await asio::this_coro::cancellation_state;
    if (cancel_requested(state)) {
      co_return cancelled(sftp.session().describe() + ": upload of " + target + " cancelled");
    }
    const char* at = data + done;
    const std::size_t left = size - done;
    // A write abandoned mid-call would break the session (libssh2 must finish sending what it
    // started), and with it the chance to remove the temporary file: each write finishes, and
    // a cancellation takes effect between writes.
    auto wrote = co_await asio::co_spawn(
        sftp.session().get_executor(),
        sftp.session().call([h, at, left] { return libssh2_sftp_write(h, at, left); },
                            std::min(sftp.deadline(), Clock::now() + kShieldedWrite)),
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    if (!wrote) co_return wrote.error();
    if (*wrote < 0) co_return sftp.error("writing", temp);
    done += static_cast<std::size_t>(*wrote);
  }
  co_return ok_status();
}

// Writes what `next` produces to a new temporary file beside `target`, with `mode`. The local
// disk is read on this thread: handing each chunk to the blocking pool cost 5-25% of the
// throughput on two cores that sshd and the session already keep busy (bench/README.md).
template <class Source>
asio::awaitable<Status> write_temp(Sftp& sftp, const std::string& target, unsigned mode,
                                   Source& next, Staged& staged, TransferStats& stats,
                                   std::size_t buffer_bytes) {
  const std::string temp = temp_beside(target, staged.tag);
  staged.writing = temp;
  auto handle = co_await sftp.open(
      temp, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL | LIBSSH2_FXF_TRUNC, 0600,
      LIBSSH2_SFTP_OPENFILE);
  if (!handle) co_return handle.error();
  LIBSSH2_SFTP_HANDLE* h = *handle;
  std::vector<char> buffer(buffer_bytes);
  Status status;
  for (;;) {
    auto got = next(buffer.data(), buffer.size());
    if (!got) {
      status = got.error();
      break;
    }
    const std::size_t n = *got;
    if (n == 0) break;
    const auto state = co_await asio::this_coro::cancellation_state;
    if (cancel_requested(state)) {
      status = cancelled(sftp.session().describe() + ": upload of " + target + " cancelled");
      break;
    }
    status = co_await send_chunk(sftp, h, target, temp, buffer.data(), n);
    if (!status.ok()) break;
    stats.bytes += n;
  }
  if (!sftp.session().usable()) {
    Status closed = co_await sftp.close(h, temp);
    co_return status.ok() ? closed : status;
  }
  if (status.code() == Code::kCancelled) co_await asio::this_coro::reset_cancellation_state();
  if (status.ok()) {
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
    attrs.permissions = mode & 07777;
    auto set = co_await sftp.session().call([&] { return libssh2_sftp_fsetstat(h, &attrs); },
                                            sftp.deadline());
    if (!set) {
      status = set.error();
    } else if (*set != 0) {
      status = sftp.error("setting the mode of", temp);
    }
  }
  Status closed = co_await sftp.close(h, temp);
  if (status.ok()) status = closed;
  if (!status.ok()) co_return status;
  staged.files.emplace_back(temp, target);
  staged.writing.clear();
  ++stats.files;
  co_return ok_status();
}

// Moves every staged file to its target: a rename where the target is new, `mv -f` otherwise.
asio::awaitable<Status> commit(Sftp& sftp, Staged& staged) {
  std::vector<std::pair<std::string, std::string>> over;
  for (const auto& [temp, target] : staged.files) {
    auto renamed = co_await sftp.rename(temp, target);
    if (!renamed) co_return renamed.error();
    if (*renamed) continue;
    // `mv -f` would move the file into a directory at the target name.
    auto existing = co_await sftp.stat(target, true);
    if (existing && LIBSSH2_SFTP_S_ISDIR(existing->permissions)) {
      co_return failed_precondition(sftp.session().describe() + ": upload target " + target +
                                    " is a directory");
    }
    over.emplace_back(temp, target);
  }
  if (Status moved = co_await move_over(sftp.session_ptr(), over); !moved.ok()) co_return moved;
  staged.files.clear();
  for (auto it = staged.directories.rbegin(); it != staged.directories.rend(); ++it) {
    if (Status set = co_await sftp.chmod(it->first, it->second); !set.ok()) co_return set;
  }
  co_return ok_status();
}

// Removes the temporary files of a failed upload, while the session lasts. Those a broken session
// cannot reach stay, hidden, for remove_temporaries(). Runs where no cancellation reaches.
asio::awaitable<void> discard(Sftp& sftp, Staged& staged) {
  std::vector<std::string> temps;
  if (!staged.writing.empty()) temps.push_back(staged.writing);
  for (const auto& [temp, target] : staged.files) temps.push_back(temp);
  for (const std::string& temp : temps) {
    if (!sftp.session().usable()) break;
    co_await sftp.unlink(temp);
  }
}

// Finishes an upload: commits on success, discards on failure or cancellation.
asio::awaitable<Status> finish(Sftp& sftp, Staged& staged, Status status) {
  if (status.ok()) status = co_await commit(sftp, staged);
  if (status.ok()) co_return status;
  co_await asio::this_coro::reset_cancellation_state();
  co_await asio::co_spawn(
      sftp.session().get_executor(), discard(sftp, staged),
      asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  co_return status;
}

struct LocalFile {
  int fd = -1;
  ~LocalFile() {
    if (fd >= 0) ::close(fd);
  }
  Result<std::size_t> operator()(char* data, std::size_t size) const {
    for (;;) {
      const ssize_t n = ::read(fd, data, size);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return internal_error(std::string("reading: ") + std::strerror(errno));
    }
  }
};

struct MemorySource {
  std::string_view content;
  Result<std::size_t> operator()(char* data, std::size_t size) {
    const std::size_t n = std::min(size, content.size());
    std::memcpy(data, content.data(), n);
    content.remove_prefix(n);
    return n;
  }
};

// Uploads one local file to a staged temporary beside `target`.
asio::awaitable<Status> stage_file(Sftp& sftp, const fs::path& local, const std::string& target,
                                   unsigned mode, Staged& staged, TransferStats& stats,
                                   std::size_t buffer_bytes) {
  LocalFile file{::open(local.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)};
  if (file.fd < 0) co_return errno_status(errno, "opening " + local.string());
  co_return co_await write_temp(sftp, target, mode, file, staged, stats, buffer_bytes);
}

asio::awaitable<Status> upload_into(Sftp& sftp, const fs::path& local, const std::string& remote,
                                    std::optional<unsigned> mode, Staged& staged,
                                    TransferStats& stats, std::size_t buffer_bytes) {
  std::error_code ec;
  const fs::file_status top = fs::symlink_status(local, ec);
  if (ec || !fs::exists(top))
    co_return not_found("upload source " + local.string() + ": no such file or directory");
  if (fs::is_symlink(top)) {
    co_return invalid_argument("upload source " + local.string() + " is a symlink");
  }
  if (fs::is_regular_file(top)) {
    const std::size_t slash = remote.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      if (Status made = co_await sftp.mkdirs(remote.substr(0, slash)); !made.ok()) co_return made;
    }
    const unsigned file_mode = mode.value_or(static_cast<unsigned>(top.permissions()) & 07777);
    co_return co_await stage_file(sftp, local, remote, file_mode, staged, stats, buffer_bytes);
  }
  if (!fs::is_directory(top)) {
    co_return invalid_argument("upload source " + local.string() +
                               " is neither a file nor a directory");
  }
  // The whole tree is read before the host is touched: a symlink or an unreadable directory deep
  // inside refuses the upload with nothing created there.
  struct Entry {
    fs::path path;
    std::string target;
    unsigned perms;
    bool directory;
  };
  std::vector<Entry> entries;
  fs::recursive_directory_iterator it(local, ec), end;
  if (ec) co_return errno_status(ec.value(), "reading " + local.string());
  for (; it != end; it.increment(ec)) {
    if (ec) co_return errno_status(ec.value(), "reading " + local.string());
    fs::path path = it->path();
    std::string target = join(remote, path.lexically_relative(local).generic_string());
    const fs::file_status st = it->symlink_status(ec);
    if (ec) co_return errno_status(ec.value(), "reading " + path.string());
    if (fs::is_symlink(st)) {
      co_return invalid_argument("upload source " + path.string() +
                                 " is a symlink (symlinks in an uploaded tree are refused)");
    }
    const auto perms = static_cast<unsigned>(st.permissions()) & 07777;
    if (fs::is_directory(st) || fs::is_regular_file(st)) {
      entries.push_back({std::move(path), std::move(target), perms, fs::is_directory(st)});
    }
  }
  if (Status made = co_await sftp.mkdirs(remote); !made.ok()) co_return made;
  ++stats.directories;
  for (const Entry& e : entries) {
    if (e.directory) {
      if (Status made = co_await sftp.mkdir(e.target, e.perms | 0700); !made.ok()) co_return made;
      if (Status set = co_await sftp.chmod(e.target, e.perms | 0700); !set.ok()) co_return set;
      staged.directories.emplace_back(e.target, e.perms);
      ++stats.directories;
    } else {
      Status sent = co_await stage_file(sftp, e.path, e.target, mode.value_or(e.perms), staged,
                                        stats, buffer_bytes);
      if (!sent.ok()) co_return sent;
    }
  }
  co_return ok_status();
}

// Checks that `dest` is a relative path that stays inside its root.
Status check_relative(const std::string& dest, std::string_view what) {
  if (dest.starts_with("/")) {
    return permission_denied(std::string(what) + " \"" + dest +
                             "\" is absolute; it must stay inside the destination directory");
  }
  for (const auto& part : fs::path(dest)) {
    if (part == "..") {
      return permission_denied(std::string(what) + " \"" + dest +
                               "\" contains \"..\"; it must stay inside the destination directory");
    }
  }
  return ok_status();
}

// Creates `dir` under `root` (an existing real directory) one component at a time, refusing
// any component that is a symlink or not a directory.
Status make_local_dirs(const fs::path& root, const fs::path& relative) {
  fs::path at = root;
  for (const auto& part : relative) {
    if (part.empty() || part == ".") continue;
    at /= part;
    struct stat st {};
    if (::lstat(at.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) {
        return permission_denied("download destination " + at.string() +
                                 " is a symlink; nothing is written through one");
      }
      if (!S_ISDIR(st.st_mode)) {
        return failed_precondition("download destination " + at.string() +
                                   " exists and is not a directory");
      }
      continue;
    }
    if (::mkdir(at.c_str(), 0755) != 0 && errno != EEXIST) {
      return errno_status(errno, "creating " + at.string());
    }
  }
  return ok_status();
}

// Removes `path` (if not empty) when it goes out of scope, however the scope is left.
struct Unlinker {
  fs::path path;
  ~Unlinker() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

Status write_all(int fd, const char* data, std::size_t size, const fs::path& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t w = ::write(fd, data + done, size - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno_status(errno, "writing " + path.string());
    done += static_cast<std::size_t>(w);
  }
  return ok_status();
}

asio::awaitable<Status> download_file(Sftp& sftp, const std::string& remote, const fs::path& local,
                                      unsigned mode, TransferStats& stats,
                                      std::size_t buffer_bytes) {
  auto handle = co_await sftp.open(remote, LIBSSH2_FXF_READ, 0, LIBSSH2_SFTP_OPENFILE);
  if (!handle) co_return handle.error();
  LIBSSH2_SFTP_HANDLE* h = *handle;
  const fs::path temp =
      local.parent_path() / ("." + local.filename().string() + ".odd-tmp-" + random_suffix());
  LocalFile out{::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
  Status status;
  if (out.fd < 0) status = errno_status(errno, "creating " + temp.string());
  Unlinker unfinished{out.fd >= 0 ? temp : fs::path()};
  // Written on this thread, as write_temp reads: see there.
  std::vector<char> buffer(buffer_bytes);
  while (status.ok()) {
    const auto state = co_await asio::this_coro::cancellation_state;
    if (cancel_requested(state)) {
      status = cancelled(sftp.session().describe() + ": download of " + remote + " cancelled");
      break;
    }
    char* data = buffer.data();
    const std::size_t size = buffer.size();
    auto got = co_await sftp.session().call([&] { return libssh2_sftp_read(h, data, size); },
                                            sftp.deadline());
    if (!got) {
      status = got.error();
      break;
    }
    if (*got < 0) {
      status = sftp.error("reading", remote);
      break;
    }
    if (*got == 0) break;
    const auto n = static_cast<std::size_t>(*got);
    status = write_all(out.fd, data, n, temp);
    stats.bytes += n;
  }
  // Clean-up must not be cancelled too: each of its calls has the transfer's deadline.
  if (status.code() == Code::kCancelled) co_await asio::this_coro::reset_cancellation_state();
  {
    Status closed = co_await sftp.close(h, remote);
    if (status.ok()) status = closed;
  }
  if (status.ok() && ::fchmod(out.fd, mode & 0777) != 0) {
    status = errno_status(errno, "chmod " + temp.string());
  }
  if (status.ok() && ::rename(temp.c_str(), local.c_str()) != 0) {
    status = errno_status(errno, "renaming into " + local.string());
  }
  if (status.ok()) unfinished.path.clear();
  if (status.ok()) ++stats.files;
  co_return status;
}

struct DirEntry {
  std::string name;
  unsigned long permissions;  // from the server's lstat: a symlink is a symlink
};

// The entries of the remote directory `remote`, without "." and "..". A name with '/' (which
// would lead out of the directory) is refused: permission_denied naming it.
asio::awaitable<Result<std::vector<DirEntry>>> list_dir(Sftp& sftp, const std::string& remote) {
  auto handle = co_await sftp.open(remote, 0, 0, LIBSSH2_SFTP_OPENDIR);
  if (!handle) co_return handle.error();
  LIBSSH2_SFTP_HANDLE* h = *handle;
  std::vector<DirEntry> entries;
  std::vector<char> name(4096);
  Status status;
  for (;;) {
    LIBSSH2_SFTP_ATTRIBUTES attrs{};
    auto got = co_await sftp.session().call(
        [&] { return libssh2_sftp_readdir_ex(h, name.data(), name.size(), nullptr, 0, &attrs); },
        sftp.deadline());
    if (!got) {
      status = got.error();
      break;
    }
    if (*got < 0) {
      status = sftp.error("listing", remote);
      break;
    }
    if (*got == 0) break;
    std::string entry(name.data(), static_cast<std::size_t>(*got));
    if (entry == "." || entry == "..") continue;
    if (entry.find('/') != std::string::npos || entry.find('\0') != std::string::npos) {
      status =
          permission_denied(sftp.session().describe() + ": " + remote + " lists an entry named \"" +
                            entry + "\", which would lead outside it");
      break;
    }
    entries.push_back({std::move(entry), attrs.permissions});
  }
  Status closed = co_await sftp.close(h, remote);
  if (status.ok()) status = std::move(closed);
  if (!status.ok()) co_return status;
  co_return entries;
}

// Downloads the directory `remote` into local_root/relative, then gives it `mode` (last, so a
// read-only directory can still be filled).
asio::awaitable<Status> download_tree(Sftp& sftp, const std::string& remote,
                                      const fs::path& local_root, const fs::path& relative,
                                      unsigned mode, TransferStats& stats,
                                      std::size_t buffer_bytes) {
  if (Status made = make_local_dirs(local_root, relative); !made.ok()) co_return made;
  ++stats.directories;
  auto entries = co_await list_dir(sftp, remote);
  if (!entries) co_return entries.error();
  Status status;
  for (const DirEntry& e : *entries) {
    const std::string child = join(remote, e.name);
    const fs::path child_relative = relative / e.name;
    const fs::path child_local = local_root / child_relative;
    if (LIBSSH2_SFTP_S_ISDIR(e.permissions)) {
      status = co_await download_tree(sftp, child, local_root, child_relative,
                                      static_cast<unsigned>(e.permissions), stats, buffer_bytes);
    } else if (LIBSSH2_SFTP_S_ISREG(e.permissions)) {
      status = co_await download_file(sftp, child, child_local,
                                      static_cast<unsigned>(e.permissions), stats, buffer_bytes);
    }
    if (!status.ok()) co_return status;
  }
  const fs::path here = local_root / relative;
  if (!relative.empty() && ::chmod(here.c_str(), mode & 0777) != 0) {
    co_return errno_status(errno, "chmod " + here.string());
  }
  co_return ok_status();
}

Status check_tag(const Session& session, const std::string& tag) {
  if (valid_tag(tag)) return ok_status();
  return invalid_argument(session.describe() + ": temporary file tag \"" + tag +
                          "\" must be at most 64 letters, digits, '-' or '_'");
}

// Removes the remote file `path`, counting it in `removed`; one already gone is fine.
asio::awaitable<Status> remove_counted(Sftp& sftp, const std::string& path,
                                       std::uint64_t& removed) {
  Status status = co_await sftp.unlink(path);
  if (status.ok()) ++removed;
  if (status.code() == Code::kNotFound) status = ok_status();
  co_return status;
}

// Removes, under the remote directory `dir` and its subdirectories, the regular files whose
// names end in `suffix` and begin with '.'.
asio::awaitable<Status> remove_tagged_under(Sftp& sftp, const std::string& dir,
                                            const std::string& suffix, std::uint64_t& removed) {
  auto entries = co_await list_dir(sftp, dir);
  if (!entries) co_return entries.error();
  for (const DirEntry& e : *entries) {
    const std::string child = join(dir, e.name);
    Status status;
    if (LIBSSH2_SFTP_S_ISDIR(e.permissions)) {
      status = co_await remove_tagged_under(sftp, child, suffix, removed);
    } else if (LIBSSH2_SFTP_S_ISREG(e.permissions) && e.name.starts_with('.') &&
               e.name.size() > suffix.size() + 1 && e.name.ends_with(suffix)) {
      status = co_await remove_counted(sftp, child, removed);
    }
    if (!status.ok()) co_return status;
  }
  co_return ok_status();
}

}  // namespace

asio::awaitable<Result<TransferStats>> upload(std::shared_ptr<Session> session,
                                              std::filesystem::path local, std::string remote,
                                              std::optional<unsigned> mode,
                                              TransferOptions options) {
  if (Status checked = check_tag(*session, options.tag); !checked.ok()) co_return checked;
  Sftp sftp(session, deadline_of(options));
  if (Status started = co_await sftp.start(); !started.ok()) co_return started;
  Staged staged;
  staged.tag = options.tag;
  TransferStats stats;
  Status sent = co_await upload_into(sftp, local, remote, mode, staged, stats,
                                     std::max<std::size_t>(options.buffer_bytes, 4096));
  Status done = co_await finish(sftp, staged, std::move(sent));
  co_await sftp.stop();
  if (!done.ok()) co_return done;
  co_return stats;
}

asio::awaitable<Status> upload_content(std::shared_ptr<Session> session, std::string_view content,
                                       std::string remote, unsigned mode, TransferOptions options) {
  if (Status checked = check_tag(*session, options.tag); !checked.ok()) co_return checked;
  Sftp sftp(session, deadline_of(options));
  if (Status started = co_await sftp.start(); !started.ok()) co_return started;
  Staged staged;
  staged.tag = options.tag;
  TransferStats stats;
  Status sent;
  const std::size_t slash = remote.rfind('/');
  if (slash != std::string::npos && slash > 0) sent = co_await sftp.mkdirs(remote.substr(0, slash));
  MemorySource source{content};
  if (sent.ok()) {
    sent = co_await write_temp(sftp, remote, mode, source, staged, stats,
                               std::max<std::size_t>(options.buffer_bytes, 4096));
  }
  Status done = co_await finish(sftp, staged, std::move(sent));
  co_await sftp.stop();
  co_return done;
}

asio::awaitable<Result<TransferStats>> download(std::shared_ptr<Session> session,
                                                std::string remote,
                                                std::filesystem::path local_root, std::string dest,
                                                TransferOptions options) {
  if (Status checked = check_relative(dest, "download destination"); !checked.ok()) {
    co_return checked;
  }
  std::error_code ec;
  fs::create_directories(local_root, ec);
  if (ec) co_return errno_status(ec.value(), "creating " + local_root.string());
  Sftp sftp(session, deadline_of(options));
  if (Status started = co_await sftp.start(); !started.ok()) co_return started;
  auto top = co_await sftp.stat(remote, true);
  if (!top) {
    co_await sftp.stop();
    co_return top.error();
  }
  const std::size_t buffer_bytes = std::max<std::size_t>(options.buffer_bytes, 4096);
  TransferStats stats;
  fs::path relative = fs::path(dest).lexically_normal();
  if (relative == ".") relative.clear();
  Status status;
  if (LIBSSH2_SFTP_S_ISDIR(top->permissions)) {
    status = co_await download_tree(sftp, remote, local_root, relative,
                                    static_cast<unsigned>(top->permissions), stats, buffer_bytes);
  } else if (LIBSSH2_SFTP_S_ISREG(top->permissions)) {
    if (relative.empty()) {
      status =
          invalid_argument("download of the file " + remote + " needs a destination file name");
    } else {
      status = make_local_dirs(local_root, relative.parent_path());
    }
    if (status.ok()) {
      struct stat st {};
      const fs::path target = local_root / relative;
      if (::lstat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        status = failed_precondition("download destination " + target.string() + " is a directory");
      }
    }
    if (status.ok()) {
      const fs::path target = local_root / relative;
      status = co_await download_file(sftp, remote, target, static_cast<unsigned>(top->permissions),
                                      stats, buffer_bytes);
    }
  } else {
    status = invalid_argument(session->describe() + ": " + remote +
                              " is neither a file nor a directory");
  }
  co_await sftp.stop();
  if (!status.ok()) co_return status;
  co_return stats;
}

asio::awaitable<Result<std::uint64_t>> remove_temporaries(std::shared_ptr<Session> session,
                                                          std::string remote, std::string tag,
                                                          TransferOptions options) {
  if (tag.empty()) co_return invalid_argument(session->describe() + ": no temporary file tag");
  if (Status checked = check_tag(*session, tag); !checked.ok()) co_return checked;
  Sftp sftp(session, deadline_of(options));
  if (Status started = co_await sftp.start(); !started.ok()) co_return started;
  std::uint64_t removed = 0;
  Status status = co_await remove_counted(sftp, temp_beside(remote, tag), removed);
  if (status.ok()) {
    auto top = co_await sftp.stat(remote, true);
    if (top && LIBSSH2_SFTP_S_ISDIR(top->permissions)) {
      status = co_await remove_tagged_under(sftp, remote, std::string(kTempMark) + tag, removed);
    } else if (!top && top.error().code() != Code::kNotFound) {
      status = top.error();
    }
  }
  co_await sftp.stop();
  if (!status.ok()) co_return status;
  co_return removed;
}

}  // namespace odd::sshx
