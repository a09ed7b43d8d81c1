// How failures reach callers (DESIGN §4), against the real dockerd and against sockets where
// none listens: dockerd's own words kept, the code right for retry decisions, the target named.

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "engine/docker_client.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

using Clock = std::chrono::steady_clock;

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// Leaves a socket file at `path` that nothing listens on (bound, then closed).
void make_dead_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof(address.sun_path));
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const std::string error = bound == 0 ? std::string() : std::string(std::strerror(errno));
  ::close(fd);
  REQUIRE_MESSAGE(bound == 0, ("bind " + path + ": " + error));
}

asio::awaitable<Status> ping_at(const std::string& docker_host) {
  auto client = engine::DockerClient::for_host(co_await asio::this_coro::executor, docker_host);
  ODD_REQUIRE_OK(client);
  co_return co_await (*client)->ping();
}

TEST_SUITE("engine integration") {
  TEST_CASE("creating a second container with a taken name is already_exists in dockerd's words") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      const std::string name = unique_name();
      engine::ContainerConfig config = container_config(name, {"true"});
      const std::string id = co_await create_tracked(*client, config, cleanup);

      auto second = co_await client->create_container(config);
      if (second) cleanup.add(*second);
      REQUIRE_FALSE(second.has_value());
      const Status& s = second.error();
      ODD_CHECK_CODE(s, Code::kAlreadyExists);
      CHECK(contains(s.message(), "is already in use"));
      CHECK(contains(s.message(), name));
      CHECK(contains(s.message(), "HTTP 409"));
      CHECK_FALSE(s.retryable());
    }());
  }

  TEST_CASE(
      "inspecting, starting or removing a missing container is not_found: No such container") {
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      const std::string missing = unique_name() + "-missing";

      auto inspected = co_await client->inspect_container(missing);
      REQUIRE_FALSE(inspected.has_value());
      ODD_CHECK_CODE(inspected.error(), Code::kNotFound);
      CHECK(contains(inspected.error().message(), "No such container"));
      CHECK(contains(inspected.error().message(), missing));

      Status started = co_await client->start_container(missing);
      ODD_CHECK_CODE(started, Code::kNotFound);
      CHECK(contains(started.message(), "No such container"));

      Status removed = co_await client->remove_container(missing, true, false);
      ODD_CHECK_CODE(removed, Code::kNotFound);
      CHECK(contains(removed.message(), "No such container"));

      auto waited = co_await client->begin_wait(missing, engine::WaitCondition::kNotRunning);
      REQUIRE_FALSE(waited.has_value());
      ODD_CHECK_CODE(waited.error(), Code::kNotFound);

      engine::AttachOptions attach_options;
      auto attached = co_await client->attach_container(missing, attach_options);
      REQUIRE_FALSE(attached.has_value());
      ODD_CHECK_CODE(attached.error(), Code::kNotFound);
    }());
  }

  TEST_CASE("a dockerd socket that does not exist is unavailable, naming the socket") {
    run_io([&]() -> asio::awaitable<void> {
      const std::string path = "/tmp/odd-nonexistent-" + std::to_string(::getpid()) + ".sock";
      const auto begin = Clock::now();
      Status s = co_await ping_at("unix://" + path);
      CHECK(Clock::now() - begin < std::chrono::seconds(5));
      ODD_CHECK_CODE(s, Code::kUnavailable);
      CHECK(contains(s.message(), path));
      CHECK(s.retryable());
    }());
  }

  TEST_CASE("a socket file nobody listens on is unavailable, naming the socket") {
    TempDir dir;
    const std::string path = (dir.path() / "dead.sock").string();
    make_dead_socket(path);
    run_io([&]() -> asio::awaitable<void> {
      const auto begin = Clock::now();
      Status s = co_await ping_at("unix://" + path);
      CHECK(Clock::now() - begin < std::chrono::seconds(5));
      ODD_CHECK_CODE(s, Code::kUnavailable);
      CHECK(contains(s.message(), path));
    }());
  }

  TEST_CASE("pulling with no registry reachable fails promptly with a status naming the image") {
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      const std::string image = "odd-test/does-not-exist:1";
      int progress_lines = 0;
      const auto begin = Clock::now();
      Status s = co_await client->pull_image(
          image, [&](const engine::PullProgress&) { ++progress_lines; }, Millis(60000));
      const auto took = Clock::now() - begin;
      CAPTURE(progress_lines);
      INFO(s.to_string());
      CHECK_FALSE(s.ok());
      CHECK((s.code() == Code::kUnavailable || s.code() == Code::kNotFound ||
             s.code() == Code::kPermissionDenied));
      CHECK(contains(s.message(), image));
      CHECK(took < std::chrono::seconds(61));
    }());
  }
}

}  // namespace
}  // namespace odd::integration
