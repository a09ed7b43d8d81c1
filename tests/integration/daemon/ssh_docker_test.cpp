// A "remote" dockerd reached through SSH channels running `docker system dial-stdio` (DESIGN §2):
// the test sshd's sessions see the test dockerd as their DOCKER_HOST, so the same DockerEngine
// builds an image from a streamed context and runs a container over the tunnel.

#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <string>

#include "daemon/docker_engine.hpp"
#include "daemon/ssh_docker_dialer.hpp"
#include "engine/docker_client.hpp"
#include "engine/image_builder.hpp"
#include "sshx/pool.hpp"
#include "tests/integration/sshx/sshd_fixture.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

using daemon::ContainerCallbacks;
using daemon::ContainerRequest;
using daemon::DockerEngine;
using daemon::OutputStream;

TEST_CASE("a remote dockerd over SSH builds from a streamed context and runs a container") {
  ContainerCleanup cleanup;
  TempDir context;
  TempDir digests;
  std::filesystem::copy_file("/bin/busybox", context.path() / "busybox");
  write_file(context.path() / "Dockerfile",
             "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n");
  asio::thread_pool blocking(1);
  run_io([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto pool = sshx::Pool::create(executor, sshd_options(), sshx::PoolOptions{});
    engine::DockerClient client(executor, daemon::make_ssh_docker_dialer(pool));
    CHECK(client.target_name().find("test-sshd") != std::string::npos);
    Status pinged = co_await client.ping();
    ODD_REQUIRE_OK(pinged);

    engine::ImageBuilder builder(client, blocking.get_executor(), digests.path());
    DockerEngine docker(client, builder);
    daemon::ImageRequest request;
    request.context_dir = context.path();
    request.repository = "odd-it/" + unique_name();
    request.timeout = Millis(240'000);
    auto built = co_await docker.build_image(request, nullptr);
    ODD_REQUIRE_OK(built);
    cleanup.add_image(built->image);

    const std::string name = unique_name();
    cleanup.add(name);
    ContainerRequest run;
    run.name = name;
    run.image = built->image;
    run.cmd = {"sh", "-c", "echo over-ssh; echo err >&2; exit 4"};
    run.network_mode = "none";
    run.labels = {{"odd.run", "it-ssh"},
                  {"odd.job", name},
                  {"odd.it.pid", std::to_string(::getpid())},
                  {"odd.it.name", name}};
    std::string out, err;
    ContainerCallbacks callbacks;
    callbacks.on_output = [&](OutputStream stream, std::string_view piece) {
      (stream == OutputStream::kStdout ? out : err).append(piece);
    };
    auto exit = co_await within(Millis(120'000), docker.run_container(run, callbacks));
    REQUIRE(exit.has_value());
    ODD_REQUIRE_OK(*exit);
    CHECK((*exit)->exit_code == 4);
    CHECK(out == "over-ssh\n");
    CHECK(err == "err\n");
    Status removed = co_await docker.stop_and_remove(name, std::chrono::seconds(1));
    ODD_CHECK_OK(removed);
    CHECK(pool->state().sessions >= 1);
  }());
}

TEST_CASE("a remote dockerd whose host refuses SSH fails with the host named") {
  run_io([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto options = sshd_options();
    options.port = 1;
    sshx::PoolOptions pool_options;
    pool_options.connect_attempts = 1;
    auto pool = sshx::Pool::create(executor, options, pool_options);
    engine::DockerClient client(executor, daemon::make_ssh_docker_dialer(pool));
    Status pinged = co_await client.ping();
    REQUIRE_FALSE(pinged.ok());
    ODD_CHECK_CODE(pinged, Code::kUnavailable);
    CHECK(pinged.message().find(":1)") != std::string::npos);
  }());
}

TEST_CASE(
    "an idle connection to a remote dockerd is closed after idle_timeout, freeing the session") {
  run_io([&]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    sshx::PoolOptions pool_options;
    pool_options.idle_timeout = Millis(200);
    auto pool = sshx::Pool::create(executor, sshd_options(), pool_options);
    engine::DockerClientOptions options;
    options.http.idle_timeout = Millis(300);
    options.http.close_idle = true;
    engine::DockerClient client(executor, daemon::make_ssh_docker_dialer(pool), options);
    Status pinged = co_await client.ping();
    ODD_REQUIRE_OK(pinged);
    CHECK(pool->state().leases == 1);  // the kept-alive connection's channel
    co_await sleep_for(Millis(1500));
    CHECK(pool->state().leases == 0);
    CHECK(pool->state().sessions == 0);  // then the pool's own idle timeout closed the session
    pinged = co_await client.ping();
    ODD_CHECK_OK(pinged);
    CHECK(client.http().connections_opened() == 2);
  }());
}

}  // namespace
}  // namespace odd::integration
