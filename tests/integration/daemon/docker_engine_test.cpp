// daemon::DockerEngine against the test dockerd (DESIGN §6): a container's output byte-exact on
// both streams, exit codes, fast exits, env and labels, cancellation and cleanup, adoption of a
// container that already holds the name, content-hashed builds, and finding containers by label.

#include "daemon/docker_engine.hpp"

#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "engine/image_builder.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

using daemon::ContainerCallbacks;
using daemon::ContainerExit;
using daemon::ContainerRequest;
using daemon::DockerEngine;
using daemon::OutputStream;
using SteadyClock = std::chrono::steady_clock;

constexpr Millis kLimit{60000};  // for anything that should take a few seconds at most

// What the callbacks of one run_container saw.
struct Captured {
  int created_calls = 0;
  std::string created_id;
  bool output_before_created = false;
  std::string out;
  std::string err;
};

ContainerCallbacks capture(Captured& c) {
  ContainerCallbacks callbacks;
  callbacks.on_created = [&c](const std::string& id) {
    ++c.created_calls;
    c.created_id = id;
  };
  callbacks.on_output = [&c](OutputStream stream, std::string_view piece) {
    if (c.created_calls == 0) c.output_before_created = true;
    (stream == OutputStream::kStdout ? c.out : c.err).append(piece);
  };
  return callbacks;
}

// A request for the test image with odd.run = `run` and odd.job = `name`, plus the labels the
// engine integration tests use to find what a test process left behind.
ContainerRequest request_for(const std::string& name, const std::string& run,
                             std::vector<std::string> cmd) {
  ContainerRequest request;
  request.name = name;
  request.image = test_image();
  request.cmd = std::move(cmd);
  request.network_mode = "none";
  request.labels = {{"odd.run", run},
                    {"odd.job", name},
                    {"odd.it.pid", std::to_string(::getpid())},
                    {"odd.it.name", name}};
  return request;
}

// The engine config of the same container, for creating it behind DockerEngine's back.
engine::ContainerConfig config_for(const ContainerRequest& request) {
  engine::ContainerConfig config = container_config(request.name, request.cmd);
  config.labels = request.labels;
  return config;
}

// Everything one test needs; the DockerEngine itself is made inside the test's coroutine.
struct Fixture {
  TempDir cache;
  boost::asio::thread_pool pool{1};
  ContainerCleanup cleanup;
  std::string run = unique_name();  // this test's odd.run label
};

TEST_SUITE("daemon integration") {
  TEST_CASE(
      "DockerEngine: run_container delivers both streams byte-exact, a line over 16 KiB and "
      "binary bytes included, and reports a non-zero exit code") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      const std::string name = unique_name();
      f.cleanup.add(name);
      // Many small writes on both streams, one long line written piece by piece and one written
      // at once, bytes that are not UTF-8, and output that does not end in a newline.
      const std::string script =
          "echo start\n"
          "i=0; while [ $i -lt 3000 ]; do printf '%05d,' $i; i=$((i+1)); done; echo\n"
          "printf 'bin\\000\\001\\177\\200\\377\\r\\n'\n"
          "printf 'to-stderr\\000\\376\\n' >&2\n"
          "head -c 20000 /dev/zero | tr '\\000' y >&2; echo >&2\n"
          "printf 'no-newline-at-end'\n"
          "exit 7\n";
      ContainerRequest request = request_for(name, f.run, {"sh", "-c", script});
      Captured seen;
      ContainerCallbacks callbacks = capture(seen);
      auto exit = co_await within(kLimit, docker.run_container(request, callbacks));
      REQUIRE_MESSAGE(exit.has_value(), "run_container did not return");
      ODD_REQUIRE_OK(*exit);

      std::string expected_out = "start\n";
      for (int i = 0; i < 3000; ++i) {
        char field[16];
        std::snprintf(field, sizeof(field), "%05d,", i);
        expected_out += field;
      }
      expected_out += "\n";
      constexpr char kBinary[] = "bin\0\1\177\200\377\r\n";
      expected_out.append(kBinary, sizeof(kBinary) - 1);
      expected_out += "no-newline-at-end";
      constexpr char kErr[] = "to-stderr\0\376\n";
      std::string expected_err(kErr, sizeof(kErr) - 1);
      expected_err += std::string(20000, 'y');
      expected_err += "\n";

      CHECK_MESSAGE(seen.out == expected_out, "stdout differs at byte "
                                                  << first_difference(seen.out, expected_out)
                                                  << " of " << seen.out.size());
      CHECK_MESSAGE(seen.err == expected_err, "stderr differs at byte "
                                                  << first_difference(seen.err, expected_err)
                                                  << " of " << seen.err.size());
      CHECK((*exit)->exit_code == 7);
      CHECK_FALSE((*exit)->oom_killed);

      CHECK(seen.created_calls == 1);
      CHECK_FALSE(seen.output_before_created);
      auto info = co_await client->inspect_container(name);
      ODD_REQUIRE_OK(info);
      CHECK(seen.created_id == info->id);
      CHECK((*exit)->container_id == info->id);
      CHECK((*exit)->image_id == info->image_id);
      CHECK((*exit)->image_id.starts_with("sha256:"));
      CHECK(info->state.status == "exited");
      CHECK_FALSE(info->tty);

      // run_container leaves the container; stop_and_remove takes it away.
      Status removed = co_await docker.stop_and_remove(name, std::chrono::seconds(1));
      ODD_CHECK_OK(removed);
      auto gone = co_await client->inspect_container(name);
      REQUIRE_FALSE(gone.has_value());
      ODD_CHECK_CODE(gone.error(), Code::kNotFound);
    }());
  }

  TEST_CASE("DockerEngine: a container that exits at once is not missed") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      for (int round = 0; round < 10; ++round) {
        CAPTURE(round);
        const std::string name = unique_name();
        f.cleanup.add(name);
        const std::int64_t code = round % 2 == 0 ? 0 : round;
        ContainerRequest request =
            request_for(name, f.run, {"sh", "-c", "exit " + std::to_string(code)});
        Captured seen;
        ContainerCallbacks callbacks = capture(seen);
        auto exit = co_await within(kLimit, docker.run_container(request, callbacks));
        REQUIRE_MESSAGE(exit.has_value(), "run_container missed the exit");
        ODD_REQUIRE_OK(*exit);
        CHECK((*exit)->exit_code == code);
        CHECK(seen.out.empty());
        CHECK(seen.err.empty());
        Status removed = co_await docker.stop_and_remove(name, std::chrono::seconds(1));
        ODD_CHECK_OK(removed);
      }
    }());
  }

  TEST_CASE("DockerEngine: env, labels and workdir of the request reach the container") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      const std::string name = unique_name();
      f.cleanup.add(name);
      ContainerRequest request =
          request_for(name, f.run, {"sh", "-c", "echo \"$ALPHA|$BETA|$(pwd)\""});
      request.env = {"ALPHA=1", "BETA=two words"};
      request.workdir = "/work-it";
      request.labels["odd.attempt"] = "2";
      Captured seen;
      ContainerCallbacks callbacks = capture(seen);
      auto exit = co_await within(kLimit, docker.run_container(request, callbacks));
      REQUIRE(exit.has_value());
      ODD_REQUIRE_OK(*exit);
      CHECK((*exit)->exit_code == 0);
      CHECK(seen.out == "1|two words|/work-it\n");

      auto info = co_await client->inspect_container(name);
      ODD_REQUIRE_OK(info);
      CHECK(info->labels == request.labels);
      std::vector<std::string> env = info->raw["Config"]["Env"].get<std::vector<std::string>>();
      const std::set<std::string> env_set(env.begin(), env.end());
      CHECK(env_set.count("ALPHA=1") == 1);
      CHECK(env_set.count("BETA=two words") == 1);
      CHECK(info->raw["HostConfig"]["NetworkMode"].get<std::string>() == "none");
    }());
  }

  TEST_CASE(
      "DockerEngine: a cancelled run_container returns cancelled promptly and leaves the "
      "container, which stop_and_remove then removes") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      SystemClock clock;
      const std::string name = unique_name();
      f.cleanup.add(name);
      ContainerRequest request = request_for(name, f.run, {"sleep", "30"});
      Captured seen;
      ContainerCallbacks callbacks = capture(seen);

      std::optional<Result<ContainerExit>> outcome;
      std::optional<SteadyClock::duration> took;
      std::optional<std::string> left_state;
      std::optional<Status> cleaned;
      const auto begin = SteadyClock::now();
      // As the scheduler does it: the cancelled coroutine itself resets its cancellation state
      // and cleans up.
      auto attempt = [&]() -> asio::awaitable<void> {
        outcome.emplace(co_await docker.run_container(request, callbacks));
        took = SteadyClock::now() - begin;
        co_await asio::this_coro::reset_cancellation_state();
        auto info = co_await client->inspect_container(name);
        if (info) left_state = info->state.status;
        cleaned = co_await docker.stop_and_remove(name, std::chrono::seconds(1));
      };
      // The cancel comes once the container exists (a fixed delay raced its creation on a
      // loaded machine under ASan), while the engine starts or waits on it.
      auto cancel_once_created = [&]() -> asio::awaitable<void> {
        while (seen.created_calls == 0) co_await clock.sleep_for(Millis(10));
        co_await clock.sleep_for(Millis(100));
      };
      // A bool, not the race's variant: awaitable operators flatten nested variants.
      auto sleep_won = co_await within(kLimit, [&]() -> asio::awaitable<bool> {
        auto raced = co_await (attempt() || cancel_once_created());
        co_return raced.index() == 1;
      }());
      REQUIRE_MESSAGE(sleep_won.has_value(), "the cancelled attempt did not finish");
      CHECK(*sleep_won);

      REQUIRE(outcome.has_value());
      REQUIRE_FALSE(outcome->has_value());
      ODD_CHECK_CODE(outcome->error(), Code::kCancelled);
      REQUIRE(took.has_value());
      // The container sleeps 30 s; a cancellation that waited for it would take that long.
      CHECK(*took < std::chrono::seconds(5));
      CHECK(seen.created_calls == 1);
      // Left as it was: running, or created when the cancellation came before the start.
      REQUIRE_MESSAGE(left_state.has_value(), "the cancelled run did not leave the container");
      CHECK((*left_state == "running" || *left_state == "created"));
      REQUIRE(cleaned.has_value());
      ODD_CHECK_OK(*cleaned);

      auto left = co_await docker.containers_with_label("odd.run", f.run);
      ODD_REQUIRE_OK(left);
      CHECK(left->empty());
      auto gone = co_await client->inspect_container(name);
      REQUIRE_FALSE(gone.has_value());
      ODD_CHECK_CODE(gone.error(), Code::kNotFound);
    }());
  }

  TEST_CASE("DockerEngine: stop_and_remove is not cut short when its caller is cancelled") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      SystemClock clock;
      engine::ContainerConfig config =
          container_config(unique_name(), {"sh", "-c", "trap '' TERM; sleep 60"});
      const std::string id = co_await create_tracked(*client, config, f.cleanup);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      co_await sleep_for(Millis(300));  // let sh install its trap

      std::optional<Status> cleaned;
      auto cleanup = [&]() -> asio::awaitable<void> {
        cleaned = co_await docker.stop_and_remove(id, std::chrono::seconds(2));
      };
      // The sleep wins long before dockerd gives up on SIGTERM after the 2 s grace.
      co_await (cleanup() || clock.sleep_for(Millis(100)));
      REQUIRE(cleaned.has_value());
      ODD_CHECK_OK(*cleaned);
      auto gone = co_await client->inspect_container(id);
      REQUIRE_FALSE(gone.has_value());
      ODD_CHECK_CODE(gone.error(), Code::kNotFound);
    }());
  }

  TEST_CASE("DockerEngine: stop_and_remove of an unknown name is ok; stop of one is not_found") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      const std::string name = unique_name();
      Status removed = co_await docker.stop_and_remove(name, std::chrono::seconds(1));
      ODD_CHECK_OK(removed);
      Status stopped = co_await docker.stop(name, std::chrono::seconds(1));
      ODD_CHECK_CODE(stopped, Code::kNotFound);
    }());
  }

  TEST_CASE("DockerEngine: stop keeps the container, stopped") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      engine::ContainerConfig config = container_config(unique_name(), {"sleep", "60"});
      const std::string id = co_await create_tracked(*client, config, f.cleanup);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      Status stopped = co_await docker.stop(id, std::chrono::seconds(1));
      ODD_REQUIRE_OK(stopped);
      auto info = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(info);
      CHECK_FALSE(info->state.running);
      CHECK(info->state.status == "exited");
    }());
  }

  TEST_CASE(
      "DockerEngine: an exited container with our labels is adopted with its exit code and not "
      "started again") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      const std::string name = unique_name();
      ContainerRequest earlier = request_for(name, f.run, {"sh", "-c", "echo first-life; exit 5"});
      engine::ContainerConfig config = config_for(earlier);
      const std::string id = co_await create_tracked(*client, config, f.cleanup);
      auto wait = co_await client->begin_wait(id, engine::WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      auto waited = co_await within(kLimit, (*wait)->result());
      REQUIRE(waited.has_value());
      ODD_REQUIRE_OK(*waited);
      auto before = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(before);

      // The same run and job asking again (say, after a daemon restart), with another command.
      ContainerRequest again = request_for(name, f.run, {"sh", "-c", "echo second-life; exit 0"});
      Captured seen;
      ContainerCallbacks callbacks = capture(seen);
      auto exit = co_await within(kLimit, docker.run_container(again, callbacks));
      REQUIRE(exit.has_value());
      ODD_REQUIRE_OK(*exit);
      CHECK((*exit)->exit_code == 5);
      CHECK((*exit)->container_id == id);
      CHECK((*exit)->image_id == before->image_id);
      CHECK(seen.created_calls == 1);
      CHECK(seen.created_id == id);
      CHECK(seen.out.empty());

      auto after = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(after);
      CHECK(after->state.status == "exited");
      CHECK(after->state.started_at == before->state.started_at);
      CHECK(after->state.finished_at == before->state.finished_at);
    }());
  }

  TEST_CASE("DockerEngine: a created container with our labels is adopted and started") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      const std::string name = unique_name();
      ContainerRequest earlier =
          request_for(name, f.run, {"sh", "-c", "echo created-earlier; exit 6"});
      engine::ContainerConfig config = config_for(earlier);
      const std::string id = co_await create_tracked(*client, config, f.cleanup);

      ContainerRequest again = request_for(name, f.run, {"sh", "-c", "echo now; exit 0"});
      Captured seen;
      ContainerCallbacks callbacks = capture(seen);
      auto exit = co_await within(kLimit, docker.run_container(again, callbacks));
      REQUIRE(exit.has_value());
      ODD_REQUIRE_OK(*exit);
      CHECK((*exit)->container_id == id);
      CHECK((*exit)->exit_code == 6);
      CHECK(seen.created_id == id);
      CHECK(seen.out == "created-earlier\n");
    }());
  }

  TEST_CASE(
      "DockerEngine: a running container with our labels is adopted: its later output and its "
      "exit code are reported") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      const std::string name = unique_name();
      ContainerRequest earlier =
          request_for(name, f.run,
                      {"sh", "-c",
                       "echo before-adoption; trap 'echo late; exit 4' USR1; while :; do sleep 1; "
                       "done"});
      engine::ContainerConfig config = config_for(earlier);
      const std::string id = co_await create_tracked(*client, config, f.cleanup);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      // The adoption must come after the first line, or it would see that line too.
      const engine::LogsOptions logs_options;
      bool printed = false;
      for (int i = 0; i < 500 && !printed; ++i) {
        auto logs = co_await client->container_logs(id, logs_options);
        ODD_REQUIRE_OK(logs);
        auto logged = co_await read_all(**logs);
        ODD_REQUIRE_OK(logged);
        printed = logged->find("before-adoption") != std::string::npos;
        if (!printed) co_await sleep_for(Millis(10));
      }
      REQUIRE(printed);

      Captured seen;
      ContainerCallbacks callbacks = capture(seen);
      std::optional<Result<ContainerExit>> outcome;
      auto adopt = [&]() -> asio::awaitable<void> {
        outcome.emplace(co_await docker.run_container(earlier, callbacks));
      };
      // USR1 once the adopting run_container has had time to attach.
      auto trigger = [&]() -> asio::awaitable<void> {
        co_await sleep_for(Millis(1500));
        Status signalled = co_await client->kill_container(id, "USR1");
        ODD_CHECK_OK(signalled);
      };
      auto both = co_await within(kLimit, [&]() -> asio::awaitable<bool> {
        co_await (adopt() && trigger());
        co_return true;
      }());
      REQUIRE_MESSAGE(both.has_value(), "the adopted container's run did not end");
      REQUIRE(outcome.has_value());
      ODD_REQUIRE_OK(*outcome);
      CHECK((*outcome)->container_id == id);
      CHECK((*outcome)->exit_code == 4);
      CHECK(seen.created_id == id);
      // What it printed before anyone attached is lost here (the caller reads /logs for it).
      CHECK(seen.out == "late\n");
    }());
  }

  TEST_CASE("DockerEngine: a container of another run holding the name is already_exists") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      const std::string name = unique_name();
      ContainerRequest foreign = request_for(name, unique_name(), {"sh", "-c", "exit 0"});
      engine::ContainerConfig config = config_for(foreign);
      const std::string id = co_await create_tracked(*client, config, f.cleanup);

      ContainerRequest ours = request_for(name, f.run, {"sh", "-c", "echo ours"});
      Captured seen;
      ContainerCallbacks callbacks = capture(seen);
      auto exit = co_await within(kLimit, docker.run_container(ours, callbacks));
      REQUIRE(exit.has_value());
      REQUIRE_FALSE(exit->has_value());
      ODD_CHECK_CODE(exit->error(), Code::kAlreadyExists);
      CHECK_MESSAGE(exit->error().message().find(name) != std::string::npos,
                    exit->error().message());
      CHECK(seen.created_calls == 0);
      auto info = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(info);
      CHECK(info->state.status == "created");  // left alone
    }());
  }

  TEST_CASE(
      "DockerEngine: build_image reports progress, and a second build of the same context is a "
      "cache hit with the same image") {
    Fixture f;
    TempDir context;
    std::filesystem::copy_file("/bin/busybox", context.path() / "busybox");
    write_file(context.path() / "Dockerfile",
               "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\n");
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      daemon::ImageRequest request;
      request.context_dir = context.path();
      request.repository = "odd-it/" + unique_name();
      request.timeout = Millis(240000);

      std::vector<daemon::BuildProgress> progress;
      auto on_progress = [&progress](const daemon::BuildProgress& p) { progress.push_back(p); };
      auto first = co_await docker.build_image(request, on_progress);
      ODD_REQUIRE_OK(first);
      f.cleanup.add_image(first->image);
      CHECK_FALSE(first->cache_hit);
      CHECK(first->image.starts_with(request.repository + ":"));
      CHECK(first->image_id.starts_with("sha256:"));
      REQUIRE_FALSE(progress.empty());
      for (const auto& p : progress) {
        CHECK(p.done <= p.total);
      }
      CHECK(progress.back().total > 0);

      progress.clear();
      auto second = co_await docker.build_image(request, on_progress);
      ODD_REQUIRE_OK(second);
      CHECK(second->cache_hit);
      CHECK(second->image == first->image);
      CHECK(second->image_id == first->image_id);

      // The image runs: its entrypoint is busybox.
      const std::string name = unique_name();
      f.cleanup.add(name);
      ContainerRequest run = request_for(name, f.run, {"echo", "built"});
      run.image = first->image;
      Captured seen;
      ContainerCallbacks callbacks = capture(seen);
      auto exit = co_await within(kLimit, docker.run_container(run, callbacks));
      REQUIRE(exit.has_value());
      ODD_REQUIRE_OK(*exit);
      CHECK((*exit)->exit_code == 0);
      CHECK((*exit)->image_id == first->image_id);
      CHECK(seen.out == "built\n");
    }());
  }

  TEST_CASE("DockerEngine: build_image of a missing context names it") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      daemon::ImageRequest request;
      request.context_dir = f.cache.path() / "no-such-context";
      request.repository = "odd-it/" + unique_name();
      auto built = co_await docker.build_image(request, nullptr);
      REQUIRE_FALSE(built.has_value());
      CHECK(built.error().code() != Code::kOk);
      CHECK_MESSAGE(built.error().message().starts_with("build image " + request.repository),
                    built.error().message());
      CHECK_MESSAGE(built.error().message().find("no-such-context") != std::string::npos,
                    built.error().message());
    }());
  }

  TEST_CASE("DockerEngine: containers_with_label finds exactly the containers carrying it") {
    Fixture f;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
      DockerEngine docker(*client, builder);
      std::set<std::string> ours;
      for (int i = 0; i < 2; ++i) {
        ContainerRequest request = request_for(unique_name(), f.run, {"sh", "-c", "exit 0"});
        engine::ContainerConfig config = config_for(request);
        co_await create_tracked(*client, config, f.cleanup);
        ours.insert(request.name);
      }
      ContainerRequest other = request_for(unique_name(), unique_name(), {"sh", "-c", "exit 0"});
      engine::ContainerConfig other_config = config_for(other);
      co_await create_tracked(*client, other_config, f.cleanup);

      auto found = co_await docker.containers_with_label("odd.run", f.run);
      ODD_REQUIRE_OK(found);
      const std::set<std::string> found_set(found->begin(), found->end());
      CHECK(found->size() == found_set.size());
      CHECK(found_set == ours);
    }());
  }
}

}  // namespace
}  // namespace odd::integration
