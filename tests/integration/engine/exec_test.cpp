// Exec in a running container against the real dockerd: output demultiplexed (raw with a TTY)
// and the command's exit code from inspect_exec.

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "engine/docker_client.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

constexpr Millis kLimit{30000};

// inspect_exec until the exec no longer runs (dockerd may record the exit just after the
// output stream ends).
asio::awaitable<Result<engine::ExecInfo>> finished_exec(engine::DockerClient& client,
                                                        const std::string& exec_id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto info = co_await client.inspect_exec(exec_id);
    if (!info || !info->running || std::chrono::steady_clock::now() > deadline) co_return info;
    co_await sleep_for(Millis(50));
  }
}

TEST_SUITE("engine integration") {
  TEST_CASE("an exec's stdout and stderr are demultiplexed and its exit code is inspected") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ContainerConfig config = container_config(unique_name(), {"sleep", "60"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);

      engine::ExecConfig exec;
      exec.cmd = {"sh", "-c", "echo out; echo err >&2; echo \"$WHO in $(pwd)\"; exit 7"};
      exec.env = {"WHO=exec"};
      exec.workdir = "/bin";
      auto exec_id = co_await client->create_exec(id, exec);
      ODD_REQUIRE_OK(exec_id);
      auto stream = co_await client->start_exec(*exec_id, false);
      ODD_REQUIRE_OK(stream);
      auto bytes = co_await within(kLimit, read_all(**stream));
      REQUIRE_MESSAGE(bytes.has_value(), "the exec's output did not end");
      ODD_REQUIRE_OK(*bytes);
      auto output = demux(**bytes, false);
      ODD_REQUIRE_OK(output);
      CHECK(output->out == "out\nexec in /bin\n");
      CHECK(output->err == "err\n");

      auto info = co_await finished_exec(*client, *exec_id);
      ODD_REQUIRE_OK(info);
      CHECK_FALSE(info->running);
      CHECK(info->exit_code == 7);
      CHECK(info->container_id == id);
    }());
  }

  TEST_CASE("a TTY exec's output is raw with CRLF line ends") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ContainerConfig config = container_config(unique_name(), {"sleep", "60"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);

      engine::ExecConfig exec;
      exec.cmd = {"sh", "-c", "echo out; echo err >&2; exit 2"};
      exec.tty = true;
      auto exec_id = co_await client->create_exec(id, exec);
      ODD_REQUIRE_OK(exec_id);
      auto stream = co_await client->start_exec(*exec_id, true);
      ODD_REQUIRE_OK(stream);
      auto bytes = co_await within(kLimit, read_all(**stream));
      REQUIRE_MESSAGE(bytes.has_value(), "the exec's output did not end");
      ODD_REQUIRE_OK(*bytes);
      auto output = demux(**bytes, true);
      ODD_REQUIRE_OK(output);
      CHECK(output->out == "out\r\nerr\r\n");

      auto info = co_await finished_exec(*client, *exec_id);
      ODD_REQUIRE_OK(info);
      CHECK(info->exit_code == 2);
    }());
  }

  TEST_CASE("an exec in a missing container is not found") {
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ExecConfig exec;
      exec.cmd = {"true"};
      auto exec_id = co_await client->create_exec(unique_name() + "-missing", exec);
      REQUIRE_FALSE(exec_id.has_value());
      ODD_CHECK_CODE(exec_id.error(), Code::kNotFound);
      CHECK(exec_id.error().message().find("No such container") != std::string::npos);
    }());
  }
}

}  // namespace
}  // namespace odd::integration
