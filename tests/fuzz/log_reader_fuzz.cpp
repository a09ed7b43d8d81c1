// Fuzzes the log file reader and the reopen scan with arbitrary bytes as a log file (an
// in-memory file under /proc/self/fd). The reader must end (no complete frame left, or an
// error), never hand out more than asked, and reopen must be idempotent: a second reopen cuts
// nothing and finds the same totals, and what the reader then reads is what inspect counts.
// Violations trap.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "daemon/log_file.hpp"

namespace {

using odd::daemon::LogFileReader;
using odd::daemon::LogFileWriter;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Reads until the reader has nothing complete left or fails; returns how much it read, or
// nothing on an error.
std::optional<std::string> read_all(const std::string& path, std::size_t max) {
  auto reader = LogFileReader::open(path);
  check(reader.has_value());
  std::string out;
  // Every call that returns bytes consumes input; the bound only catches a loop.
  for (int calls = 0;; ++calls) {
    check(calls < (1 << 20));
    const std::size_t before = out.size();
    auto n = (*reader)->read(out, max);
    if (!n) return std::nullopt;
    check(*n <= max && out.size() == before + *n);
    if (*n == 0) return out;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = ::memfd_create("log", 0);
  check(fd >= 0);
  for (std::size_t done = 0; done < size;) {
    const ssize_t w = ::write(fd, data + done, size - done);
    check(w > 0);
    done += static_cast<std::size_t>(w);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);

  (void)read_all(path, size > 0 ? 1 + data[0] % 97 : 1);
  (void)odd::daemon::inspect_log_file(path);

  auto first = LogFileWriter::reopen(path);
  if (first.has_value()) {
    const auto totals = (*first)->totals();
    const auto end = (*first)->size();
    check((*first)->close().ok());
    auto second = LogFileWriter::reopen(path);
    check(second.has_value());
    check((*second)->truncated_bytes() == 0);
    check((*second)->totals() == totals && (*second)->size() == end);
    auto info = odd::daemon::inspect_log_file(path);
    check(info.has_value());
    check(info->totals == totals && info->valid_bytes == end && info->file_bytes == end);
    if (auto all = read_all(path, 65536)) check(all->size() == info->data_bytes);
  }
  ::close(fd);
  return 0;
}
