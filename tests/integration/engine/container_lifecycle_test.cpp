// The container lifecycle against the real dockerd (DESIGN §6): create → wait → attach → start →
// drain → exit code → inspect → logs → remove, the wait-before-start race, stop and kill, and
// cancelling a wait.

#include <doctest/doctest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "engine/docker_client.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

using engine::WaitCondition;
using Clock = std::chrono::steady_clock;

constexpr Millis kLimit{30000};  // for anything that should take well under a second

TEST_SUITE("engine integration") {
  TEST_CASE(
      "a container's lifecycle: wait and attach before start see its output and exit code, "
      "inspect and logs agree, remove makes it unknown") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      const std::string name = unique_name();
      engine::ContainerConfig config = container_config(
          name, {"sh", "-c", "echo \"$GREETING from $(pwd)\"; echo to-stderr >&2; exit 3"});
      config.env = {"GREETING=hello"};
      config.labels["odd.it.kind"] = "lifecycle";
      config.workdir = "/work-it";
      const std::string id = co_await create_tracked(*client, config, cleanup);

      auto wait = co_await client->begin_wait(id, WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      engine::AttachOptions attach_options;
      auto attached = co_await client->attach_container(id, attach_options);
      ODD_REQUIRE_OK(attached);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);

      auto bytes = co_await within(kLimit, read_all(**attached));
      REQUIRE_MESSAGE(bytes.has_value(), "the attach stream did not end");
      ODD_REQUIRE_OK(*bytes);
      auto live = demux(**bytes, false);
      ODD_REQUIRE_OK(live);
      CHECK(live->out == "hello from /work-it\n");
      CHECK(live->err == "to-stderr\n");

      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE_MESSAGE(result.has_value(), "the wait did not return");
      ODD_REQUIRE_OK(*result);
      CHECK((*result)->status_code == 3);
      CHECK((*result)->error.empty());

      auto info = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(info);
      CHECK(info->id == id);
      CHECK(info->name == name);
      CHECK(info->image == test_image());
      CHECK(info->image_id.starts_with("sha256:"));
      CHECK_FALSE(info->tty);
      CHECK(info->state.status == "exited");
      CHECK_FALSE(info->state.running);
      CHECK(info->state.exit_code == 3);
      CHECK(info->labels == config.labels);

      engine::LogsOptions logs_options;
      auto logs = co_await client->container_logs(id, logs_options);
      ODD_REQUIRE_OK(logs);
      auto logged = co_await within(kLimit, read_all(**logs));
      REQUIRE(logged.has_value());
      ODD_REQUIRE_OK(*logged);
      auto stored = demux(**logged, info->tty);
      ODD_REQUIRE_OK(stored);
      CHECK(stored->out == live->out);
      CHECK(stored->err == live->err);

      Status removed = co_await client->remove_container(id, false, false);
      ODD_REQUIRE_OK(removed);
      auto gone = co_await client->inspect_container(id);
      REQUIRE_FALSE(gone.has_value());
      ODD_CHECK_CODE(gone.error(), Code::kNotFound);
    }());
  }

  TEST_CASE("a wait registered before start sees the exit of a container that exits at once") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      for (int round = 0; round < 20; ++round) {
        CAPTURE(round);
        engine::ContainerConfig config = container_config(unique_name(), {"true"});
        const std::string id = co_await create_tracked(*client, config, cleanup);
        auto wait = co_await client->begin_wait(id, WaitCondition::kNextExit);
        ODD_REQUIRE_OK(wait);
        Status started = co_await client->start_container(id);
        ODD_REQUIRE_OK(started);
        auto result = co_await within(kLimit, (*wait)->result());
        REQUIRE_MESSAGE(result.has_value(), "the wait missed the exit");
        ODD_REQUIRE_OK(*result);
        CHECK((*result)->status_code == 0);
        Status removed = co_await client->remove_container(id, false, false);
        ODD_CHECK_OK(removed);
      }
    }());
  }

  TEST_CASE("a not-running wait on a container that already exited returns its exit code at once") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ContainerConfig config = container_config(unique_name(), {"sh", "-c", "exit 5"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      auto first = co_await client->begin_wait(id, WaitCondition::kNextExit);
      ODD_REQUIRE_OK(first);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      auto exited = co_await within(kLimit, (*first)->result());
      REQUIRE(exited.has_value());
      ODD_REQUIRE_OK(*exited);

      auto again = co_await within(kLimit, client->wait_container(id, WaitCondition::kNotRunning));
      REQUIRE_MESSAGE(again.has_value(), "a not-running wait on an exited container blocked");
      ODD_REQUIRE_OK(*again);
      CHECK((*again)->status_code == 5);
    }());
  }

  TEST_CASE("stop kills a container that ignores SIGTERM once the grace period is over") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ContainerConfig config =
          container_config(unique_name(), {"sh", "-c", "trap '' TERM; sleep 60"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      auto wait = co_await client->begin_wait(id, WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      co_await sleep_for(Millis(300));  // let sh install its trap

      const auto begin = Clock::now();
      Status stopped = co_await client->stop_container(id, std::chrono::seconds(1));
      const auto took = Clock::now() - begin;
      ODD_REQUIRE_OK(stopped);
      CHECK(took >= Millis(900));   // SIGTERM was ignored: dockerd waited out the grace period
      CHECK(took < Millis(10000));  // then it killed

      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE(result.has_value());
      ODD_REQUIRE_OK(*result);
      CHECK((*result)->status_code == 137);
      auto info = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(info);
      CHECK_FALSE(info->state.running);
      CHECK(info->state.exit_code == 137);

      Status again = co_await client->stop_container(id, std::chrono::seconds(1));
      CHECK_MESSAGE(again.ok(), "stopping a stopped container: " << again.to_string());
    }());
  }

  TEST_CASE("kill ends a running container at once with exit code 137") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ContainerConfig config = container_config(unique_name(), {"sleep", "60"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      auto wait = co_await client->begin_wait(id, WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      auto running = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(running);
      CHECK(running->state.running);

      Status killed = co_await client->kill_container(id);
      ODD_REQUIRE_OK(killed);
      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE(result.has_value());
      ODD_REQUIRE_OK(*result);
      CHECK((*result)->status_code == 137);
      auto info = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(info);
      CHECK_FALSE(info->state.running);
      CHECK(info->state.exit_code == 137);

      Status not_running = co_await client->kill_container(id);
      CHECK_FALSE(not_running.ok());  // dockerd: "is not running" (409)
    }());
  }

  TEST_CASE("a wait on a running container ends promptly as cancelled when its slot is cancelled") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      std::shared_ptr<engine::DockerClient> client = co_await connect();
      engine::ContainerConfig config = container_config(unique_name(), {"sleep", "60"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);

      // Shared with the spawned waiter, which may outlive this frame if cancellation fails.
      struct Waiter {
        explicit Waiter(asio::any_io_executor executor)
            : finished(executor, Clock::time_point::max()) {}
        asio::cancellation_signal signal;
        asio::steady_timer finished;
        bool done = false;
        std::exception_ptr error;
        std::optional<Result<engine::WaitResult>> result;
      };
      auto executor = co_await asio::this_coro::executor;
      auto waiter = std::make_shared<Waiter>(executor);
      asio::co_spawn(
          executor,
          [client, id]() -> asio::awaitable<Result<engine::WaitResult>> {
            co_return co_await client->wait_container(id, WaitCondition::kNotRunning);
          },
          asio::bind_cancellation_slot(
              waiter->signal.slot(), [waiter](std::exception_ptr e, Result<engine::WaitResult> r) {
                waiter->error = e;
                if (!e) waiter->result.emplace(std::move(r));
                waiter->done = true;
                waiter->finished.cancel();
              }));
      co_await sleep_for(Millis(1000));
      REQUIRE_MESSAGE(!waiter->done, "the wait returned while the container was running");

      const auto begin = Clock::now();
      waiter->signal.emit(asio::cancellation_type::terminal);
      waiter->finished.expires_after(Millis(5000));
      co_await waiter->finished.async_wait(asio::as_tuple(asio::use_awaitable));
      const auto took = Clock::now() - begin;

      CHECK_MESSAGE(waiter->done, "the cancelled wait did not return within 5 s");
      CHECK(took < Millis(2000));
      if (waiter->done) {
        CHECK_FALSE(waiter->error);
        REQUIRE(waiter->result.has_value());
        REQUIRE_FALSE(waiter->result->has_value());
        ODD_CHECK_CODE(waiter->result->error(), Code::kCancelled);
      }

      Status removed = co_await client->remove_container(id, true, false);
      ODD_REQUIRE_OK(removed);
      if (!waiter->done) {  // removal ends the wait; do not leave it running past the test
        waiter->finished.expires_after(kLimit);
        co_await waiter->finished.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      auto gone = co_await client->inspect_container(id);
      REQUIRE_FALSE(gone.has_value());
      ODD_CHECK_CODE(gone.error(), Code::kNotFound);
    }());
  }
}

}  // namespace
}  // namespace odd::integration
