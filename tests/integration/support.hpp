#pragma once
// The fixture of the integration tests: the dockerd and image that tests/support/with-dockerd.sh
// provides, run_io() so a TEST_CASE body can be a coroutine, unique names (tests run in parallel
// against one dockerd) and ContainerCleanup, which force-removes what a test created even when it
// fails. Everything here runs on the test's own thread; nothing is shared between tests.

#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "engine/docker_client.hpp"

namespace odd::integration {

namespace asio = boost::asio;
using Millis = std::chrono::milliseconds;

// $ODD_TEST_DOCKER_HOST; fails the running test with a hint when it is not set.
const std::string& docker_host();
// $ODD_TEST_IMAGE, odd-test/busybox:1 by default: FROM scratch with static busybox in /bin.
const std::string& test_image();
// The docker CLI that speaks to the test dockerd (Debian's, /usr/bin/docker), for differential
// tests; $ODD_TEST_DOCKER_CLI overrides it.
const std::string& docker_cli();

// "odd-it-<pid>-<n>", unique across the test processes sharing one dockerd.
std::string unique_name();

// Runs `task` on a fresh io_context until it completes and returns its value; an exception
// thrown inside (a failed REQUIRE included) is rethrown here.
template <class T>
T run_io(asio::awaitable<T> task) {
  asio::io_context io;
  std::exception_ptr error;
  std::optional<T> value;
  bool done = false;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) value.emplace(std::move(v));
    done = true;
  });
  io.run();
  if (error) std::rethrow_exception(error);
  REQUIRE_MESSAGE(done, "the test coroutine never completed");
  return std::move(*value);
}

template <>
void run_io(asio::awaitable<void> task);

// A client for the test dockerd on the calling coroutine's executor.
asio::awaitable<std::unique_ptr<engine::DockerClient>> connect(
    engine::DockerClientOptions options = {});

// A container config for the test image: `cmd`, network mode none (the test dockerd has no
// bridge), and labels odd.it.pid=<pid> and odd.it.name=<name>.
engine::ContainerConfig container_config(const std::string& name, std::vector<std::string> cmd);

class ContainerCleanup;

// Creates a container from `config` and hands it to `cleanup`; fails the test when dockerd refuses.
asio::awaitable<std::string> create_tracked(engine::DockerClient& client,
                                            const engine::ContainerConfig& config,
                                            ContainerCleanup& cleanup);

// Force-removes the containers and images handed to it when it goes out of scope, through a
// client of its own, so a test that fails half-way leaves nothing behind. Declare it before
// run_io() in the TEST_CASE, outside the coroutine.
class ContainerCleanup {
 public:
  ContainerCleanup() = default;
  ContainerCleanup(const ContainerCleanup&) = delete;
  ContainerCleanup& operator=(const ContainerCleanup&) = delete;
  ~ContainerCleanup();

  void add(std::string container_id) { containers_.push_back(std::move(container_id)); }
  void add_image(std::string reference) { images_.push_back(std::move(reference)); }

 private:
  std::vector<std::string> containers_;
  std::vector<std::string> images_;
};

// A directory under /tmp removed with its contents when it goes out of scope.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, std::string_view content);

// Reads a response body or a hijacked stream to its end.
asio::awaitable<Result<std::string>> read_all(engine::BodyReader& reader);
asio::awaitable<Result<std::string>> read_all(engine::RawStream& stream);

// One log stream demultiplexed (engine::Demuxer) into what went to stdout and to stderr.
struct Output {
  std::string out;
  std::string err;
};
// invalid_argument when the bytes are not a well-formed multiplexed stream or end inside a frame.
Result<Output> demux(std::string_view bytes, bool raw);

// The index of the first byte where `a` and `b` differ (the shorter length when one is a prefix
// of the other), std::string::npos when equal: what a failed comparison of megabytes prints.
std::size_t first_difference(std::string_view a, std::string_view b);

// The outcome of `op`, or std::nullopt when `limit` passed first (op is then cancelled).
template <class T>
asio::awaitable<std::optional<T>> within(Millis limit, asio::awaitable<T> op) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, limit);
  auto outcome = co_await (std::move(op) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  co_return std::nullopt;
}

// Suspends the calling coroutine for `duration`.
asio::awaitable<void> sleep_for(Millis duration);

inline std::string describe(const Status& status) { return status.to_string(); }
template <class T>
std::string describe(const Result<T>& result) {
  return result ? std::string("ok") : result.error().to_string();
}
inline bool is_ok(const Status& status) { return status.ok(); }
template <class T>
bool is_ok(const Result<T>& result) {
  return result.has_value();
}

}  // namespace odd::integration

// Assertions on a Status or Result held in a variable (the argument is evaluated twice), that
// print the error's code and message when they fail.
#define ODD_REQUIRE_OK(x) \
  REQUIRE_MESSAGE(::odd::integration::is_ok(x), ::odd::integration::describe(x))
#define ODD_CHECK_OK(x) CHECK_MESSAGE(::odd::integration::is_ok(x), ::odd::integration::describe(x))
// Checks the code of a Status held in a variable, printing the whole Status when it differs.
#define ODD_CHECK_CODE(status, expected_code) \
  CHECK_MESSAGE((status).code() == (expected_code), (status).to_string())
