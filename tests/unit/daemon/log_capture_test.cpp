#include "daemon/log_capture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/log_file.hpp"
#include "log_test_support.hpp"

namespace odd::daemon {
namespace {

using testing::read_file;
using testing::stored_text;
using testing::TempDir;
using testing::write_file;

constexpr std::size_t kMaxLine = std::size_t{1} << 20;

// Records what the capture reports, as text, in order.
CaptureListener recorder(std::vector<std::string>& events) {
  CaptureListener l;
  l.on_progress = [&events](const proto::Progress& p) {
    events.push_back("progress " + std::to_string(p.done) + "/" + std::to_string(p.total) + " " +
                     p.label);
  };
  l.on_suite = [&events](const proto::SuiteResult& s) {
    std::string e = "suite ";
    e.append(proto::to_string(s.status)).append(" ").append(s.name);
    if (s.expect) e.append(" expect ").append(*s.expect);
    events.push_back(e);
  };
  l.on_output = [&events](const std::string& key, const std::string& value) {
    events.push_back("output " + key + "=" + value);
  };
  return l;
}

struct Fixture {
  TempDir dir;
  asio::io_context io;
  int opened = 0;

  CaptureOptions options(std::vector<std::string> secrets = {}) {
    CaptureOptions o;
    o.dir = dir.path();
    o.container_name = "odd-run-job";
    o.stamp = "20261122-1420" + std::to_string(10 + opened++) + "Z";
    o.secrets = std::move(secrets);
    return o;
  }

  std::unique_ptr<LogCapture> open(CaptureOptions o, CaptureListener l = {}) {
    auto capture = LogCapture::open(io.get_executor(), std::move(o), std::move(l), nullptr);
    REQUIRE_MESSAGE(capture.has_value(), capture.error().to_string());
    return std::move(*capture);
  }
};

// Stores `input` on stdout in two writes cut at `cut`, then closes; returns what was stored.
std::string store_cut(Fixture& f, std::string_view input, std::size_t cut,
                      std::vector<std::string> secrets = {}) {
  auto capture = f.open(f.options(std::move(secrets)));
  capture->write(OutputStream::kStdout, input.substr(0, cut));
  capture->write(OutputStream::kStdout, input.substr(cut));
  REQUIRE(capture->close().ok());
  return stored_text(capture->stdout_path());
}

TEST_CASE("lines split across pieces at every offset are stored exactly, with their totals") {
  Fixture f;
  const std::string input = "first\n\nsecond\r\n  third\tline\r\n\nlast without newline";
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    CAPTURE(cut);
    auto capture = f.open(f.options());
    capture->write(OutputStream::kStdout, std::string_view(input).substr(0, cut));
    capture->write(OutputStream::kStdout, std::string_view(input).substr(cut));
    CHECK(capture->bytes(OutputStream::kStdout) == input.size());
    CHECK(capture->bytes(OutputStream::kStderr) == 0);
    REQUIRE(capture->close().ok());
    CHECK(stored_text(capture->stdout_path()) == input);
    CHECK(stored_text(capture->stderr_path()).empty());
    auto info = inspect_log_file(capture->stdout_path());
    REQUIRE(info.has_value());
    CHECK(info->totals == LogTotals{input.size(), 6});
  }
}

TEST_CASE("a secret split across two pieces is masked, at every offset") {
  Fixture f;
  const std::string input = "token=s3cr3t-value; again s3cr3t-value\nclean line\n";
  for (std::size_t cut = 0; cut <= input.size(); ++cut) {
    CAPTURE(cut);
    CHECK(store_cut(f, input, cut, {"s3cr3t-value"}) == "token=***; again ***\nclean line\n");
  }
}

TEST_CASE("overlapping, touching and nested secrets leave no byte of any of them") {
  Fixture f;
  CHECK(store_cut(f, "xxabcdefyy\n", 4, {"abcd", "cdef"}) == "xx***yy\n");
  CHECK(store_cut(f, "[abcdabcd]\n", 3, {"abcd"}) == "[***]\n");
  CHECK(store_cut(f, "aaaa-aa\n", 2, {"aa"}) == "***-***\n");
  CHECK(store_cut(f, "pre-longsecret-post\n", 9, {"secret", "longsecret"}) == "pre-***-post\n");
  CHECK(store_cut(f, "a b\n", 1, {"", "zz"}) == "a b\n");
}

TEST_CASE("a secret of several lines is masked line by line") {
  Fixture f;
  const std::string key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\r\n-----END KEY-----\n";
  CHECK(store_cut(f, "leak: " + key + "done\n", 10, {key}) == "leak: ***\n***\r\n***\ndone\n");
}

TEST_CASE("masking happens on both streams and the raw totals count bytes before masking") {
  Fixture f;
  auto capture = f.open(f.options({"hunter2"}));
  const std::string out = "password is hunter2\n";
  const std::string err = "hunter2hunter2 on stderr\n";
  capture->write(OutputStream::kStdout, out);
  capture->write(OutputStream::kStderr, err);
  REQUIRE(capture->close().ok());
  CHECK(stored_text(capture->stdout_path()) == "password is ***\n");
  CHECK(stored_text(capture->stderr_path()) == "*** on stderr\n");
  CHECK(capture->bytes(OutputStream::kStdout) == out.size());
  CHECK(capture->bytes(OutputStream::kStderr) == err.size());
  auto info = inspect_log_file(capture->stderr_path());
  REQUIRE(info.has_value());
  CHECK(info->totals == LogTotals{err.size(), 1});
}

TEST_CASE("a line longer than the maximum is stored whole and counts as one line") {
  Fixture f;
  std::string input(kMaxLine * 2 + 12345, 'x');
  input += "\nPB> 1/2 after\n";
  std::vector<std::string> events;
  auto capture = f.open(f.options(), recorder(events));
  for (std::size_t at = 0; at < input.size(); at += 65536) {
    capture->write(OutputStream::kStdout, std::string_view(input).substr(at, 65536));
  }
  REQUIRE(capture->close().ok());
  CHECK(stored_text(capture->stdout_path()) == input);
  auto info = inspect_log_file(capture->stdout_path());
  REQUIRE(info.has_value());
  CHECK(info->totals == LogTotals{input.size(), 2});
  CHECK(events == std::vector<std::string>{"progress 1/2 after"});
  // The tail holds the pieces the line was cut into, each cut to tail_line_bytes.
  const auto tail = capture->tail();
  REQUIRE(tail.size() == 4);
  CHECK(tail[0].second == std::string(4096, 'x'));
  CHECK(tail[3].second == "PB> 1/2 after");
}

TEST_CASE("CRLF lines keep their carriage return and are still understood") {
  Fixture f;
  std::vector<std::string> events;
  auto capture = f.open(f.options(), recorder(events));
  const std::string input = "PASS crlf-suite\r\n::set-output name=k::v\r\n";
  capture->write(OutputStream::kStdout, input);
  REQUIRE(capture->close().ok());
  CHECK(stored_text(capture->stdout_path()) == input);
  CHECK(events == std::vector<std::string>{"suite pass crlf-suite", "output k=v"});
}

TEST_CASE("progress, suites and outputs are reported in line order, from stdout only") {
  Fixture f;
  std::vector<std::string> events;
  auto capture = f.open(f.options({"topsecret"}), recorder(events));
  const std::string out =
      "starting\n"
      "PB> 1/3 build\n"
      "[v1] PASS 10-basic\n"
      "PASSING is not a result\n"
      "FAIL 20-edge [xfail]\n"
      "::set-output name=url::http://x/?t=topsecret\n"
      "SKIP 30-slow\n"
      "[v2] PB> 3/3 done\n"
      "PB> 4/3 impossible\n";
  const std::string err = "PASS on-stderr\nPB> 2/3 stderr\n::set-output name=e::1\n";
  for (std::size_t i = 0; i < out.size(); i += 7) {
    capture->write(OutputStream::kStdout, std::string_view(out).substr(i, 7));
    capture->write(OutputStream::kStderr, std::string_view(err).substr(std::min(i, err.size()), 7));
  }
  REQUIRE(capture->close().ok());
  CHECK(events == std::vector<std::string>{"progress 1/3 build", "suite pass 10-basic",
                                           "suite fail 20-edge expect xfail",
                                           "output url=http://x/?t=***", "suite skip 30-slow",
                                           "progress 3/3 done"});
}

TEST_CASE("the tail keeps the last N lines of both streams, masked, oldest first") {
  Fixture f;
  CaptureOptions o = f.options({"pw"});
  o.tail_lines = 5;
  auto capture = f.open(std::move(o));
  for (int i = 0; i < 12; ++i) {
    const auto stream = i % 3 == 0 ? OutputStream::kStderr : OutputStream::kStdout;
    capture->write(stream, "line " + std::to_string(i) + " pw\n");
    if (i == 8) capture->flush();
  }
  capture->write(OutputStream::kStdout, "partial, not yet a line");
  using Tail = std::vector<std::pair<OutputStream, std::string>>;
  const Tail expected{{OutputStream::kStdout, "line 7 ***"},
                      {OutputStream::kStdout, "line 8 ***"},
                      {OutputStream::kStderr, "line 9 ***"},
                      {OutputStream::kStdout, "line 10 ***"},
                      {OutputStream::kStdout, "line 11 ***"}};
  CHECK(capture->tail() == expected);
  REQUIRE(capture->close().ok());
  Tail after(expected.begin() + 1, expected.end());
  after.emplace_back(OutputStream::kStdout, "partial, not yet a line");
  CHECK(capture->tail() == after);
}

TEST_CASE("the flush timer stores pending lines without a flush() call") {
  Fixture f;
  CaptureOptions o = f.options();
  o.flush_interval = std::chrono::milliseconds(10);
  auto capture = f.open(std::move(o));
  capture->write(OutputStream::kStdout, "waiting for the timer\nheld partial");
  capture->write(OutputStream::kStderr, "and on stderr\n");
  CHECK(stored_text(capture->stdout_path()).empty());
  // The timer is the only outstanding work: run_one() returns once it fired.
  REQUIRE(f.io.run_one() == 1);
  CHECK(stored_text(capture->stdout_path()) == "waiting for the timer\n");
  CHECK(stored_text(capture->stderr_path()) == "and on stderr\n");
  // Nothing pending: no timer is armed again.
  CHECK(f.io.poll() == 0);
  CHECK(f.io.stopped());
}

TEST_CASE("a frame is closed once frame_bytes are pending") {
  Fixture f;
  CaptureOptions o = f.options();
  o.frame_bytes = 1000;
  auto capture = f.open(std::move(o));
  const std::string line(99, 'a');
  for (int i = 0; i < 25; ++i) capture->write(OutputStream::kStdout, line + "\n");
  // 2500 bytes: two frames of 1000 are closed, 500 bytes still pending.
  CHECK(stored_text(capture->stdout_path()) == [&] {
    std::string s;
    for (int i = 0; i < 20; ++i) s += line + "\n";
    return s;
  }());
  REQUIRE(capture->close().ok());
  CHECK(stored_text(capture->stdout_path()).size() == 2500);
}

TEST_CASE("flush() stores complete lines only; close() stores the unterminated last line") {
  Fixture f;
  auto capture = f.open(f.options());
  capture->write(OutputStream::kStdout, "a\nb");
  capture->write(OutputStream::kStderr, "no newline at all");
  capture->flush();
  CHECK(stored_text(capture->stdout_path()) == "a\n");
  CHECK(stored_text(capture->stderr_path()).empty());
  REQUIRE(capture->close().ok());
  REQUIRE(capture->close().ok());
  capture->write(OutputStream::kStdout, "after close: ignored\n");
  CHECK(stored_text(capture->stdout_path()) == "a\nb");
  CHECK(stored_text(capture->stderr_path()) == "no newline at all");
  auto info = inspect_log_file(capture->stdout_path());
  REQUIRE(info.has_value());
  CHECK(info->totals == LogTotals{3, 2});
}

TEST_CASE("open refuses existing files and leaves nothing of its own behind") {
  Fixture f;
  CaptureOptions o = f.options();
  auto first = f.open(o);
  REQUIRE(first->close().ok());
  const std::string stored = read_file(first->stdout_path());
  auto again = LogCapture::open(f.io.get_executor(), o, {}, nullptr);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.error().code() == Code::kAlreadyExists);
  CHECK(read_file(first->stdout_path()) == stored);

  // Only the stderr file is in the way: the stdout file created meanwhile is removed again.
  CaptureOptions other = f.options();
  const auto err_path = other.dir / (other.container_name + "-stderr-" + other.stamp + ".log.zst");
  const auto out_path = other.dir / (other.container_name + "-stdout-" + other.stamp + ".log.zst");
  write_file(err_path, "someone else's");
  auto blocked = LogCapture::open(f.io.get_executor(), other, {}, nullptr);
  REQUIRE_FALSE(blocked.has_value());
  CHECK(blocked.error().code() == Code::kAlreadyExists);
  CHECK(blocked.error().message().find(err_path.string()) != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out_path));
  CHECK(read_file(err_path) == "someone else's");
}

TEST_CASE("file names follow <container>-<stream>-<stamp>.log.zst in the job's directory") {
  Fixture f;
  CaptureOptions o = f.options();
  o.container_name = "odd-20261122-142030Z-3f2a-test-arch";
  o.stamp = "20261122-142030Z";
  auto capture = f.open(o);
  CHECK(capture->stdout_path() ==
        f.dir / "odd-20261122-142030Z-3f2a-test-arch-stdout-20261122-142030Z.log.zst");
  CHECK(capture->stderr_path() ==
        f.dir / "odd-20261122-142030Z-3f2a-test-arch-stderr-20261122-142030Z.log.zst");
}

TEST_CASE("resuming after a restart stores output read again from the start exactly once") {
  Fixture f;
  CaptureOptions o = f.options({"sekrit"});
  const std::string out = "one sekrit\ntwo\nthree\nfour\n";
  const std::string err = "e1\ne2\n";
  std::filesystem::path out_path;
  std::filesystem::path err_path;
  {
    auto capture = f.open(o);
    out_path = capture->stdout_path();
    err_path = capture->stderr_path();
    capture->write(OutputStream::kStdout, std::string_view(out).substr(0, 17));  // "...two\nth"
    capture->write(OutputStream::kStderr, std::string_view(err).substr(0, 3));
    capture->flush();
    // The daemon dies here: keep the files as they are now (the partial lines are not stored)
    // and add a torn pair's first bytes.
    std::filesystem::copy_file(out_path, f.dir / "out.crash");
    std::filesystem::copy_file(err_path, f.dir / "err.crash");
    REQUIRE(capture->close().ok());
  }
  std::filesystem::rename(f.dir / "out.crash", out_path);
  std::filesystem::rename(f.dir / "err.crash", err_path);
  std::ofstream(out_path, std::ios::binary | std::ios::app) << "\x28\xb5\x2f";

  o.resume = true;
  auto resumed = f.open(o);
  CHECK(resumed->bytes(OutputStream::kStdout) == 15);
  for (std::size_t i = 0; i < out.size(); i += 5) {
    resumed->write(OutputStream::kStdout, std::string_view(out).substr(i, 5));
  }
  resumed->write(OutputStream::kStderr, err);
  CHECK(resumed->bytes(OutputStream::kStdout) == out.size());
  REQUIRE(resumed->close().ok());
  CHECK(stored_text(out_path) == "one ***\ntwo\nthree\nfour\n");
  CHECK(stored_text(err_path) == err);
  auto info = inspect_log_file(out_path);
  REQUIRE(info.has_value());
  CHECK(info->totals == LogTotals{out.size(), 4});
  CHECK(info->valid_bytes == info->file_bytes);
}

TEST_CASE("resuming creates a file that is missing and refuses nothing else") {
  Fixture f;
  CaptureOptions o = f.options();
  o.resume = true;
  auto capture = f.open(o);
  capture->write(OutputStream::kStdout, "fresh\n");
  REQUIRE(capture->close().ok());
  CHECK(stored_text(capture->stdout_path()) == "fresh\n");
}

}  // namespace
}  // namespace odd::daemon
