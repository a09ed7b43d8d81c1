#include "daemon/log_hub.hpp"

#include <doctest/doctest.h>

#include <array>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "daemon/log_capture.hpp"
#include "daemon/log_file.hpp"
#include "log_test_support.hpp"

namespace odd::daemon {
namespace {

using testing::TempDir;
using testing::write_file;

struct Fixture {
  TempDir dir;
  asio::io_context io;
  LogHub hub;

  std::unique_ptr<LogCapture> open(std::string name = "c") {
    CaptureOptions o;
    o.dir = dir.path();
    o.container_name = std::move(name);
    o.stamp = "20261122-142030Z";
    auto capture = LogCapture::open(io.get_executor(), std::move(o), {}, &hub);
    REQUIRE_MESSAGE(capture.has_value(), capture.error().to_string());
    return std::move(*capture);
  }

  // A step of the attempt `view` follows, as the scheduler runs one: its pair listed, `marker`
  // notified, `out` and `err` written, the step ended.
  void run_step(JobLogView& view, const std::filesystem::path& marker, std::string name,
                std::string_view out, std::string_view err = {}) {
    auto step = open(std::move(name));
    view.pairs.emplace_back(step->stdout_path(), step->stderr_path());
    hub.notify(marker);
    step->write(OutputStream::kStdout, out);
    if (!err.empty()) step->write(OutputStream::kStderr, err);
    REQUIRE(step->close().ok());
  }

  // A job cursor over whatever `view` lists when it asks.
  std::unique_ptr<ByteCursor> job_cursor(const JobLogView& view, std::filesystem::path marker,
                                         LogSelect select, bool follow) {
    auto c = open_job_log_cursor(
        io.get_executor(), hub, [&view] { return view; }, std::move(marker), select, follow);
    REQUIRE_MESSAGE(c.has_value(), c.error().to_string());
    return std::move(*c);
  }

  std::unique_ptr<ByteCursor> cursor(std::vector<std::filesystem::path> files, bool follow) {
    auto c = open_log_cursor(io.get_executor(), hub, std::move(files), follow);
    REQUIRE_MESSAGE(c.has_value(), c.error().to_string());
    return std::move(*c);
  }
};

// What a cursor read until its end, piece by piece; the status that stopped it.
struct Drained {
  std::vector<std::string> pieces;
  Status status;
  bool done = false;
};

asio::awaitable<void> drain(ByteCursor& cursor, Drained& into) {
  for (;;) {
    auto piece = co_await cursor.next();
    if (!piece) {
      into.status = piece.error();
      break;
    }
    if (piece->empty()) break;
    into.pieces.push_back(std::move(*piece));
  }
  into.done = true;
}

void spawn(asio::io_context& io, asio::awaitable<void> task) {
  asio::co_spawn(io, std::move(task), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(asio::use_awaitable);
}

// Runs what is ready; restart() first, as an io_context that ran out of work stays stopped.
void poll(asio::io_context& io) {
  io.restart();
  io.poll();
}

std::string joined(const std::vector<std::string>& pieces) {
  std::string all;
  for (const auto& p : pieces) all += p;
  return all;
}

TEST_CASE("a follower sees what is written after it started and ends when the capture closes") {
  Fixture f;
  auto capture = f.open();
  const auto path = capture->stdout_path();
  CHECK(f.hub.live(path));
  auto cursor = f.cursor({path}, true);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  std::string written;
  bool closed = false;
  // A named closure: it must outlive the coroutine that refers to its captures.
  auto writer = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 20; ++i) {
      const std::string line = "line " + std::to_string(i) + "\n";
      capture->write(OutputStream::kStdout, line);
      written += line;
      if (i % 5 == 4) capture->flush();
      co_await pause(std::chrono::milliseconds(1));
      // Everything flushed so far may be read; the follower never ends early.
      CHECK_FALSE(seen.done);
    }
    capture->write(OutputStream::kStdout, "unterminated");
    written += "unterminated";
    closed = true;
    REQUIRE(capture->close().ok());
  };
  spawn(f.io, writer());
  f.io.run();
  CHECK(closed);
  CHECK(seen.done);
  CHECK(seen.status.ok());
  CHECK(joined(seen.pieces) == written);
  CHECK_FALSE(f.hub.live(path));
  CHECK(f.hub.waiters() == 0);
}

TEST_CASE("a job cursor reads step after step and, following, waits for the attempt's next step") {
  Fixture f;
  const std::filesystem::path marker = f.dir / "jobs-marker";
  JobLogView view;
  view.open = true;
  f.hub.open(marker);
  auto cursor = f.job_cursor(view, marker, LogSelect::kBoth, true);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  // No step has a log yet: the follower waits instead of ending.
  poll(f.io);
  CHECK_FALSE(seen.done);

  auto writer = [&]() -> asio::awaitable<void> {
    f.run_step(view, marker, "step1", "compose up\n", "pulling\n");
    co_await pause(std::chrono::milliseconds(2));
    CHECK_FALSE(seen.done);
    f.run_step(view, marker, "step2", "pytest passed\n");
    co_await pause(std::chrono::milliseconds(2));
    CHECK_FALSE(seen.done);
    view.open = false;
    f.hub.close(marker);
  };
  spawn(f.io, writer());
  f.io.run();
  CHECK(seen.done);
  CHECK(seen.status.ok());
  const std::string all = joined(seen.pieces);
  CHECK(all.find("compose up\n") != std::string::npos);
  CHECK(all.find("pulling\n") != std::string::npos);
  CHECK(all.ends_with("pytest passed\n"));
  CHECK(f.hub.waiters() == 0);

  // Read again without following: the same steps, stdout only, in order.
  auto stored = f.job_cursor(view, marker, LogSelect::kStdout, false);
  Drained again;
  spawn(f.io, drain(*stored, again));
  poll(f.io);
  CHECK(again.done);
  CHECK(joined(again.pieces) == "compose up\npytest passed\n");
}

TEST_CASE("a job cursor following a job yet to start waits for its attempt, then reads it") {
  Fixture f;
  const std::filesystem::path marker = f.dir / "jobs-later";
  JobLogView view;
  view.open = true;
  auto cursor = f.job_cursor(view, marker, LogSelect::kBoth, true);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  auto writer = [&]() -> asio::awaitable<void> {
    co_await pause(kLogFollowPoll + kLogFollowPoll / 2);
    CHECK_FALSE(seen.done);
    f.hub.open(marker);
    f.run_step(view, marker, "later", "started at last\n");
    view.open = false;
    f.hub.close(marker);
  };
  spawn(f.io, writer());
  f.io.run();
  CHECK(seen.done);
  CHECK(seen.status.ok());
  CHECK(joined(seen.pieces) == "started at last\n");

  // A job that never starts (skipped): the follower ends with nothing.
  JobLogView skipped;
  skipped.open = true;
  auto never = f.job_cursor(skipped, f.dir / "skipped", LogSelect::kBoth, true);
  Drained none;
  spawn(f.io, drain(*never, none));
  auto skipper = [&]() -> asio::awaitable<void> {
    co_await pause(std::chrono::milliseconds(10));
    skipped.open = false;
  };
  spawn(f.io, skipper());
  f.io.restart();
  f.io.run();
  CHECK(none.done);
  CHECK(none.status.ok());
  CHECK(none.pieces.empty());
}

TEST_CASE("a job cursor that does not follow ends when the listed steps are read") {
  Fixture f;
  JobLogView view;
  view.open = true;
  auto cursor = f.job_cursor(view, f.dir / "m", LogSelect::kBoth, false);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  poll(f.io);
  CHECK(seen.done);
  CHECK(seen.pieces.empty());

  // A missing first file fails the request itself; a later one ends the stream with the error.
  view.pairs.emplace_back(f.dir / "gone-stdout", f.dir / "gone-stderr");
  auto missing = open_job_log_cursor(
      f.io.get_executor(), f.hub, [&view] { return view; }, f.dir / "m", LogSelect::kBoth, false);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kNotFound);
  CHECK(missing.error().message().find("gone-stdout") != std::string::npos);

  auto capture = f.open("present");
  REQUIRE(capture->close().ok());
  view.pairs.insert(view.pairs.begin(), {capture->stdout_path(), capture->stderr_path()});
  auto later = open_job_log_cursor(
      f.io.get_executor(), f.hub, [&view] { return view; }, f.dir / "m", LogSelect::kBoth, false);
  REQUIRE(later.has_value());
  Drained failed;
  spawn(f.io, drain(**later, failed));
  poll(f.io);
  CHECK(failed.done);
  CHECK(failed.status.code() == Code::kNotFound);
  CHECK(failed.status.message().find("gone-stdout") != std::string::npos);
}

TEST_CASE("a cursor that does not follow ends at what is written now, even of a live file") {
  Fixture f;
  auto capture = f.open();
  capture->write(OutputStream::kStdout, "stored\npending partial");
  capture->flush();
  auto cursor = f.cursor({capture->stdout_path()}, false);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  f.io.run();
  CHECK(seen.done);
  CHECK(joined(seen.pieces) == "stored\n");
  CHECK(f.hub.live(capture->stdout_path()));
}

TEST_CASE("following a file the hub does not know ends at its end") {
  Fixture f;
  auto capture = f.open();
  capture->write(OutputStream::kStdout, "done\n");
  REQUIRE(capture->close().ok());
  auto cursor = f.cursor({capture->stdout_path()}, true);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  f.io.run();
  CHECK(seen.done);
  CHECK(joined(seen.pieces) == "done\n");
}

TEST_CASE("pieces of one file are at most 64 KiB") {
  Fixture f;
  auto capture = f.open();
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "some output line " + std::to_string(i) + "\n";
  capture->write(OutputStream::kStdout, big);
  REQUIRE(capture->close().ok());
  auto cursor = f.cursor({capture->stdout_path()}, false);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  f.io.run();
  CHECK(seen.pieces.size() > 1);
  for (const auto& p : seen.pieces) CHECK(p.size() <= 65536);
  CHECK(joined(seen.pieces) == big);
}

// Checks that every piece holds one stream's bytes only (stdout lines are made of 'o', stderr
// lines of 'e'), that a piece ending inside a line is followed by more of the same stream, and
// returns each stream's bytes in order.
std::array<std::string, 2> split_streams(const std::vector<std::string>& pieces) {
  std::array<std::string, 2> streams;
  int open_line = -1;
  for (const auto& p : pieces) {
    REQUIRE_FALSE(p.empty());
    const bool err = p.find('o') == std::string::npos;
    const int s = err ? 1 : 0;
    CHECK(p.find(err ? 'o' : 'e') == std::string::npos);
    if (open_line >= 0) CHECK(open_line == s);
    open_line = p.back() == '\n' ? -1 : s;
    streams[static_cast<std::size_t>(s)] += p;
  }
  return streams;
}

std::string line_of(char c, std::size_t n) { return std::string(n, c) + "\n"; }

TEST_CASE("stream=both interleaves whole lines and never splits one between streams") {
  Fixture f;
  auto capture = f.open();
  std::array<std::string, 2> written;
  std::mt19937_64 rng(23);
  for (int i = 0; i < 400; ++i) {
    const int s = static_cast<int>(rng() % 2);
    // Mostly short lines, some longer than a 64 KiB piece.
    const std::size_t n = i % 50 == 7 ? 150000 + rng() % 1000 : 1 + rng() % 3000;
    const std::string line = line_of(s == 0 ? 'o' : 'e', n);
    capture->write(s == 0 ? OutputStream::kStdout : OutputStream::kStderr, line);
    written[static_cast<std::size_t>(s)] += line;
    if (i % 37 == 0) capture->flush();
  }
  capture->write(OutputStream::kStderr, "eee-unterminated");
  written[1] += "eee-unterminated";

  SUBCASE("following while it is written") {
    auto cursor = f.cursor({capture->stdout_path(), capture->stderr_path()}, true);
    Drained seen;
    spawn(f.io, drain(*cursor, seen));
    auto finish = [&]() -> asio::awaitable<void> {
      co_await pause(std::chrono::milliseconds(2));
      capture->write(OutputStream::kStdout, "ooo\n");
      written[0] += "ooo\n";
      REQUIRE(capture->close().ok());
    };
    spawn(f.io, finish());
    f.io.run();
    CHECK(seen.done);
    CHECK(seen.status.ok());
    CHECK(split_streams(seen.pieces) == written);
  }
  SUBCASE("reading the stored logs") {
    REQUIRE(capture->close().ok());
    auto cursor = f.cursor({capture->stdout_path(), capture->stderr_path()}, false);
    Drained seen;
    spawn(f.io, drain(*cursor, seen));
    f.io.run();
    CHECK(seen.done);
    for (const auto& p : seen.pieces) CHECK(p.size() <= 65536);
    CHECK(split_streams(seen.pieces) == written);
  }
}

TEST_CASE("stream=both keeps following one stream after the other one ended") {
  Fixture f;
  const auto out_path = f.dir / "out.log.zst";
  const auto err_path = f.dir / "err.log.zst";
  auto out = LogFileWriter::create(out_path);
  auto err = LogFileWriter::create(err_path);
  REQUIRE(out.has_value());
  REQUIRE(err.has_value());
  f.hub.open(out_path);
  f.hub.open(err_path);
  REQUIRE((*err)->append("eee\n", {4, 1}).ok());
  f.hub.close(err_path);
  auto cursor = f.cursor({out_path, err_path}, true);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  poll(f.io);
  CHECK(joined(seen.pieces) == "eee\n");
  CHECK_FALSE(seen.done);
  CHECK(f.hub.waiters() == 1);
  REQUIRE((*out)->append("ooo\n", {4, 1}).ok());
  f.hub.notify(out_path);
  poll(f.io);
  CHECK(joined(seen.pieces) == "eee\nooo\n");
  CHECK_FALSE(seen.done);
  f.hub.close(out_path);
  poll(f.io);
  CHECK(seen.done);
}

TEST_CASE("a cursor that is never read costs the hub nothing while 50 MB are captured") {
  Fixture f;
  auto capture = f.open();
  auto idle = f.cursor({capture->stdout_path()}, true);
  // One more follower parked in a wait during the whole flood.
  auto parked = f.cursor({capture->stderr_path()}, true);
  Drained parked_seen;
  spawn(f.io, drain(*parked, parked_seen));
  f.io.poll();
  const std::size_t files = f.hub.live_files();
  const std::size_t waiters = f.hub.waiters();
  CHECK(files == 2);
  CHECK(waiters == 1);
  std::string chunk;
  for (int i = 0; i < 650; ++i)
    chunk += "flood line " + std::to_string(i) + std::string(80, '.') + "\n";
  std::uint64_t total = 0;
  while (total < 50'000'000) {
    capture->write(OutputStream::kStdout, chunk);
    total += chunk.size();
    CHECK(f.hub.live_files() == files);
    CHECK(f.hub.waiters() == waiters);
  }
  capture->flush();
  CHECK(f.hub.live_files() == files);
  CHECK(f.hub.waiters() == waiters);
  REQUIRE(capture->close().ok());
  f.io.run();
  CHECK(parked_seen.done);
  CHECK(f.hub.live_files() == 0);
  CHECK(f.hub.waiters() == 0);
}

TEST_CASE("cancelling a waiting follower ends it at once with cancelled") {
  Fixture f;
  auto capture = f.open();
  auto cursor = f.cursor({capture->stdout_path()}, true);
  asio::cancellation_signal signal;
  Drained seen;
  asio::co_spawn(f.io, drain(*cursor, seen),
                 asio::bind_cancellation_slot(signal.slot(), [](std::exception_ptr e) {
                   if (e) std::rethrow_exception(e);
                 }));
  f.io.poll();
  REQUIRE(f.hub.waiters() == 1);
  CHECK_FALSE(seen.done);
  signal.emit(asio::cancellation_type::terminal);
  // No time passes in poll(): only the cancellation can have ended the wait.
  f.io.poll();
  CHECK(seen.done);
  CHECK(seen.status.code() == Code::kCancelled);
  CHECK(f.hub.waiters() == 0);
}

TEST_CASE("wait() is woken by notify and close, and returns at once for a change it missed") {
  Fixture f;
  const std::filesystem::path path = f.dir / "x.log.zst";
  f.hub.open(path);
  const std::array<std::filesystem::path, 1> files{path};
  std::optional<Status> result;
  auto waiter = [&](std::uint64_t seen) -> asio::awaitable<void> {
    result = co_await f.hub.wait(f.io.get_executor(), files, seen, std::chrono::hours(1));
  };

  spawn(f.io, waiter(f.hub.version()));
  poll(f.io);
  CHECK_FALSE(result.has_value());
  f.hub.notify(path);
  poll(f.io);
  REQUIRE(result.has_value());
  CHECK(result->ok());

  result.reset();
  const std::uint64_t before = f.hub.version();
  f.hub.notify(path);
  spawn(f.io, waiter(before));
  poll(f.io);
  CHECK(result.has_value());

  result.reset();
  spawn(f.io, waiter(f.hub.version()));
  poll(f.io);
  CHECK_FALSE(result.has_value());
  f.hub.close(path);
  poll(f.io);
  CHECK(result.has_value());
  CHECK_FALSE(f.hub.live(path));
}

TEST_CASE("open_log_cursor names a missing file and refuses a wrong number of files") {
  Fixture f;
  auto missing = open_log_cursor(f.io.get_executor(), f.hub, {f.dir / "gone.log.zst"}, true);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kNotFound);
  CHECK(missing.error().message().find("gone.log.zst") != std::string::npos);
  auto none = open_log_cursor(f.io.get_executor(), f.hub, {}, false);
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code() == Code::kInvalidArgument);
}

TEST_CASE("a corrupt log file ends the cursor with invalid_argument") {
  Fixture f;
  const auto path = f.dir / "bad.log.zst";
  write_file(path, "not a zstd file");
  auto cursor = f.cursor({path}, false);
  Drained seen;
  spawn(f.io, drain(*cursor, seen));
  f.io.run();
  CHECK(seen.done);
  CHECK(seen.status.code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace odd::daemon
