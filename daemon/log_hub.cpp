#include "daemon/log_hub.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string_view>
#include <utility>

#include "daemon/log_file.hpp"

namespace odd::daemon {

namespace {

constexpr std::size_t kPiece = std::size_t{64} << 10;

}  // namespace

struct LogHub::Waiter {
  asio::steady_timer* timer = nullptr;
  bool woken = false;
};

std::string LogHub::key(const std::filesystem::path& path) {
  return path.lexically_normal().string();
}

void LogHub::wake(File& file) {
  file.changed = ++version_;
  for (Waiter* waiter : file.waiters) {
    if (!waiter->woken) {
      waiter->woken = true;
      waiter->timer->cancel();
    }
  }
}

void LogHub::open(const std::filesystem::path& path) { files_.try_emplace(key(path)); }

void LogHub::notify(const std::filesystem::path& path) {
  if (auto it = files_.find(key(path)); it != files_.end()) wake(it->second);
}

void LogHub::close(const std::filesystem::path& path) {
  if (auto it = files_.find(key(path)); it != files_.end()) {
    wake(it->second);
    files_.erase(it);
  }
}

bool LogHub::live(const std::filesystem::path& path) const { return files_.contains(key(path)); }

std::size_t LogHub::waiters() const {
  std::size_t n = 0;
  for (const auto& [name, file] : files_) n += file.waiters.size();
  return n;
}

asio::awaitable<Status> LogHub::wait(asio::any_io_executor executor,
                                     std::span<const std::filesystem::path> files,
                                     std::uint64_t seen, std::chrono::milliseconds timeout) {
  std::vector<std::string> keys;
  keys.reserve(files.size());
  for (const auto& path : files) {
    auto it = files_.find(key(path));
    if (it == files_.end() || it->second.changed > seen) co_return ok_status();
    keys.push_back(it->first);
  }
  asio::steady_timer timer(executor, timeout);
  Waiter waiter{&timer, false};
  for (const auto& k : keys) files_[k].waiters.push_back(&waiter);
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  // close() may have forgotten a file meanwhile: only the ones still known hold the waiter.
  for (const auto& k : keys) {
    if (auto it = files_.find(k); it != files_.end()) std::erase(it->second.waiters, &waiter);
  }
  if (ec && !waiter.woken) co_return cancelled("waiting for more log output: cancelled");
  co_return ok_status();
}

namespace {

class FileCursor final : public ByteCursor {
 public:
  FileCursor(asio::any_io_executor executor, LogHub& hub, std::filesystem::path path,
             std::unique_ptr<LogFileReader> reader, bool follow)
      : executor_(std::move(executor)),
        hub_(hub),
        path_(std::move(path)),
        reader_(std::move(reader)),
        follow_(follow) {}

  asio::awaitable<Result<std::string>> next() override {
    for (;;) {
      const std::uint64_t seen = hub_.version();
      // Taken before reading: a file that was not live then has all its frames on disk.
      const bool live = follow_ && hub_.live(path_);
      std::string piece;
      auto n = reader_->read(piece, kPiece);
      if (!n) co_return n.error();
      if (*n > 0) co_return piece;
      if (!live) co_return std::string();
      const std::array<std::filesystem::path, 1> files{path_};
      Status s = co_await hub_.wait(executor_, files, seen, kLogFollowPoll);
      if (!s.ok()) co_return s;
    }
  }

 private:
  asio::any_io_executor executor_;
  LogHub& hub_;
  std::filesystem::path path_;
  std::unique_ptr<LogFileReader> reader_;
  bool follow_;
};

// stdout and stderr as whole lines. Each stream keeps at most one piece of read-ahead (`carry`);
// a line longer than a piece is sent in several pieces with the other stream held back
// (`locked_`) until its end.
class BothCursor final : public ByteCursor {
 public:
  BothCursor(asio::any_io_executor executor, LogHub& hub,
             std::array<std::filesystem::path, 2> paths,
             std::array<std::unique_ptr<LogFileReader>, 2> readers, bool follow)
      : executor_(std::move(executor)), hub_(hub), paths_(std::move(paths)), follow_(follow) {
    for (std::size_t i = 0; i < 2; ++i) streams_[i].reader = std::move(readers[i]);
  }

  asio::awaitable<Result<std::string>> next() override {
    for (;;) {
      const std::uint64_t seen = hub_.version();
      std::array<bool, 2> live{};
      for (std::size_t i = 0; i < 2; ++i) live[i] = follow_ && hub_.live(paths_[i]);
      if (locked_ >= 0) {
        const auto i = static_cast<std::size_t>(locked_);
        auto piece = take(i, !live[i]);
        if (!piece) co_return piece.error();
        if (!piece->empty()) co_return std::move(*piece);
        if (live[i]) {
          Status s = co_await hub_.wait(executor_, waiting(live, i), seen, kLogFollowPoll);
          if (!s.ok()) co_return s;
          continue;
        }
        locked_ = -1;
      }
      for (std::size_t k = 0; k < 2; ++k) {
        const std::size_t i = (turn_ + k) % 2;
        auto piece = take(i, !live[i]);
        if (!piece) co_return piece.error();
        if (!piece->empty()) {
          turn_ = 1 - i;
          co_return std::move(*piece);
        }
      }
      if (!live[0] && !live[1]) co_return std::string();
      Status s = co_await hub_.wait(executor_, waiting(live, 2), seen, kLogFollowPoll);
      if (!s.ok()) co_return s;
    }
  }

 private:
  struct Stream {
    std::unique_ptr<LogFileReader> reader;
    std::string carry;
  };

  // The live files among `only` (a stream index, or 2 for both): a file that is not live any
  // more has nothing to wait for, and the hub would return at once for it.
  std::span<const std::filesystem::path> waiting(const std::array<bool, 2>& live,
                                                 std::size_t only) const {
    const bool first = live[0] && only != 1;
    const bool second = live[1] && only != 0;
    return std::span<const std::filesystem::path>(paths_).subspan(
        first ? 0 : 1, static_cast<std::size_t>(first) + static_cast<std::size_t>(second));
  }

  // The next piece of stream `i` that may be sent now; empty when none. `ended`: the stream's
  // file is complete, so an unterminated last line may go out as it is.
  Result<std::string> take(std::size_t i, bool ended) {
    Stream& s = streams_[i];
    if (s.carry.size() < kPiece) {
      auto n = s.reader->read(s.carry, kPiece - s.carry.size());
      if (!n) return n.error();
    }
    if (s.carry.empty()) return std::string();
    const std::size_t newline = s.carry.rfind('\n');
    std::size_t cut = 0;
    if (newline != std::string::npos) {
      cut = newline + 1;
      if (locked_ == static_cast<int>(i)) locked_ = -1;
    } else if (locked_ == static_cast<int>(i) || s.carry.size() >= kPiece) {
      cut = s.carry.size();
      locked_ = static_cast<int>(i);
    } else if (ended) {
      cut = s.carry.size();
    }
    if (cut == 0) return std::string();
    if (cut == s.carry.size()) return std::exchange(s.carry, std::string());
    std::string piece = s.carry.substr(0, cut);
    s.carry.erase(0, cut);
    return piece;
  }

  asio::any_io_executor executor_;
  LogHub& hub_;
  std::array<std::filesystem::path, 2> paths_;
  std::array<Stream, 2> streams_;
  bool follow_;
  std::size_t turn_ = 0;
  int locked_ = -1;
};

class JobCursor final : public ByteCursor {
 public:
  JobCursor(asio::any_io_executor executor, LogHub& hub, std::function<JobLogView()> view,
            std::filesystem::path marker, LogSelect select, bool follow)
      : executor_(std::move(executor)),
        hub_(hub),
        view_(std::move(view)),
        marker_(std::move(marker)),
        select_(select),
        follow_(follow) {}

  asio::awaitable<Result<std::string>> next() override {
    for (;;) {
      if (current_) {
        auto piece = co_await current_->next();
        if (!piece || !piece->empty()) co_return piece;
        current_.reset();
        ++next_pair_;
      }
      const std::uint64_t seen = hub_.version();
      const JobLogView view = view_();
      if (next_pair_ < view.pairs.size()) {
        if (Status opened = open_pair(view.pairs[next_pair_]); !opened.ok()) co_return opened;
        continue;
      }
      if (!follow_ || !view.open) co_return std::string();
      if (hub_.live(marker_)) {
        const std::array<std::filesystem::path, 1> marker{marker_};
        Status s = co_await hub_.wait(executor_, marker, seen, kLogFollowPoll);
        if (!s.ok()) co_return s;
        continue;
      }
      // The attempt has not started: nothing notifies until it does, so the view is polled.
      asio::steady_timer timer(executor_, kLogFollowPoll);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return cancelled("waiting for the job to start: cancelled");
    }
  }

  // Opens the cursor of `pair`, the next one to read.
  Status open_pair(const std::pair<std::filesystem::path, std::filesystem::path>& pair) {
    std::vector<std::filesystem::path> files;
    if (select_ != LogSelect::kStderr) files.push_back(pair.first);
    if (select_ != LogSelect::kStdout) files.push_back(pair.second);
    auto cursor = open_log_cursor(executor_, hub_, std::move(files), follow_);
    if (!cursor) return cursor.error();
    current_ = std::move(*cursor);
    return ok_status();
  }

 private:
  asio::any_io_executor executor_;
  LogHub& hub_;
  std::function<JobLogView()> view_;
  std::filesystem::path marker_;
  LogSelect select_;
  bool follow_;
  std::size_t next_pair_ = 0;
  std::unique_ptr<ByteCursor> current_;
};

}  // namespace

Result<std::unique_ptr<ByteCursor>> open_job_log_cursor(asio::any_io_executor executor, LogHub& hub,
                                                        std::function<JobLogView()> view,
                                                        std::filesystem::path marker,
                                                        LogSelect select, bool follow) {
  const JobLogView now = view();
  auto cursor = std::make_unique<JobCursor>(std::move(executor), hub, std::move(view),
                                            std::move(marker), select, follow);
  // A missing first file is an error of the request, not of a stream already begun.
  if (!now.pairs.empty()) {
    if (Status opened = cursor->open_pair(now.pairs.front()); !opened.ok()) return opened;
  }
  return std::unique_ptr<ByteCursor>(std::move(cursor));
}

Result<std::unique_ptr<ByteCursor>> open_log_cursor(asio::any_io_executor executor, LogHub& hub,
                                                    std::vector<std::filesystem::path> files,
                                                    bool follow) {
  if (files.empty() || files.size() > 2) {
    return invalid_argument("a log cursor reads one or two files, not " +
                            std::to_string(files.size()));
  }
  std::array<std::unique_ptr<LogFileReader>, 2> readers;
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto reader = LogFileReader::open(files[i]);
    if (!reader) return reader.error();
    readers[i] = std::move(*reader);
  }
  if (files.size() == 1) {
    return std::unique_ptr<ByteCursor>(std::make_unique<FileCursor>(
        std::move(executor), hub, std::move(files[0]), std::move(readers[0]), follow));
  }
  std::array<std::filesystem::path, 2> paths{std::move(files[0]), std::move(files[1])};
  return std::unique_ptr<ByteCursor>(std::make_unique<BothCursor>(
      std::move(executor), hub, std::move(paths), std::move(readers), follow));
}

}  // namespace odd::daemon
