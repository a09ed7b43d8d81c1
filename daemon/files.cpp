#include "daemon/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>

namespace odd::daemon {

namespace fs = std::filesystem;

Status write_all(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "writing " + path.native());
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Status fsync_dir(const fs::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return errno_status(errno, "opening " + dir.native());
  if (::fsync(fd.get()) != 0) return errno_status(errno, "syncing " + dir.native());
  return {};
}

Status make_dirs(const fs::path& dir, mode_t mode) {
  fs::path at;
  for (const fs::path& part : dir) {
    at /= part;
    if (::mkdir(at.c_str(), mode) == 0) continue;
    const int err = errno;
    std::error_code ec;
    if (err == EEXIST && fs::is_directory(at, ec)) continue;
    if (err == EEXIST) return failed_precondition(at.native() + " exists and is not a directory");
    return errno_status(err, "creating directory " + at.native());
  }
  return ok_status();
}

Status write_file_atomic(const fs::path& target, std::string_view data, mode_t mode, Sync sync) {
  const fs::path dir = target.parent_path();
  const fs::path temp = dir / ("." + target.filename().native() + ".tmp");
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (fd.get() < 0) return errno_status(errno, "creating " + temp.native());
  Status status = write_all(fd.get(), data, temp);
  if (status.ok() && sync == Sync::kYes && ::fsync(fd.get()) != 0) {
    status = errno_status(errno, "syncing " + temp.native());
  }
  if (fd.close() != 0 && status.ok()) status = errno_status(errno, "closing " + temp.native());
  if (status.ok() && ::rename(temp.c_str(), target.c_str()) != 0) {
    status = errno_status(errno, "renaming " + temp.native() + " to " + target.native());
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  return sync == Sync::kYes ? fsync_dir(dir) : ok_status();
}

Result<std::string> read_file(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_status(errno, "opening " + path.native());
  std::string data;
  std::array<char, 64 * 1024> buffer{};
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, "reading " + path.native());
    }
    if (n == 0) break;
    data.append(buffer.data(), static_cast<std::size_t>(n));
  }
  return data;
}

}  // namespace odd::daemon
