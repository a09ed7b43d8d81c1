// RunManager over a real run store in a temporary directory and a fake remote host: which hosts
// and steps a submission may name, what GET /v1/health says of the hosts, and where downloads
// land in a run's artifacts.
#include "daemon/run_manager.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <map>
#include <string>

#include "common/clock.hpp"
#include "tests/unit/daemon/log_test_support.hpp"

namespace odd::daemon {
namespace {

using testing::TempDir;

// Answers at once; a download writes one file where it was asked to.
class InstantRemote final : public RemoteHost {
 public:
  asio::awaitable<Result<RemoteExit>> exec(
      const RemoteCommand&,
      std::function<void(OutputStream, std::string_view)> on_output) override {
    on_output(OutputStream::kStdout, "hello from tester1\n");
    co_return RemoteExit{};
  }
  asio::awaitable<Result<RemoteTransfer>> upload(const std::filesystem::path&, const std::string&,
                                                 std::optional<unsigned>) override {
    co_return RemoteTransfer{};
  }
  asio::awaitable<Status> upload_content(std::string_view, const std::string&, unsigned) override {
    co_return ok_status();
  }
  asio::awaitable<Result<RemoteTransfer>> download(const std::string&,
                                                   const std::filesystem::path& local_root,
                                                   const std::string& dest) override {
    std::filesystem::create_directories(local_root / dest);
    std::ofstream(local_root / dest / "summary.json") << "{}\n";
    co_return RemoteTransfer{1, 3};
  }
  RemoteHostHealth health() const override {
    return {"failing", 2, 1, "tester1 (10.0.0.85:22): connection refused"};
  }
};

HostConfig host_at(std::string address, bool docker) {
  HostConfig config;
  config.address = std::move(address);
  config.port = 2222;
  config.user = "xplg";
  config.agent = true;
  config.known_hosts = "/etc/odd/known_hosts";
  config.docker = docker;
  return config;
}

struct Fixture {
  TempDir dir;
  asio::io_context io;
  SystemClock clock;
  LogHub hub;
  std::unique_ptr<RunStore> store;
  HostRegistry hosts{[](const std::string&, const HostConfig&) -> std::unique_ptr<RemoteHost> {
    return std::make_unique<InstantRemote>();
  }};
  std::unique_ptr<RunManager> manager;

  Fixture() {
    auto opened = RunStore::open(dir.path() / "state");
    REQUIRE(opened.has_value());
    store = std::move(*opened);
    hosts.configure(
        {{"tester1", host_at("10.0.0.85", false)}, {"docker1", host_at("10.0.0.86", true)}});
    SchedulerEnv env;
    env.clock = &clock;
    env.engine_for = [](const std::string&) -> ContainerEngine* { return nullptr; };
    env.remote_for = [this](const std::string& host) { return hosts.find(host); };
    env.check_path = [](const std::filesystem::path&, std::string_view) { return ok_status(); };
    env.cache_dir = [](const std::string& name) -> Result<std::filesystem::path> {
      return std::filesystem::path("/nonexistent") / name;
    };
    env.instance_id = store->instance_id();
    RunManagerOptions options;
    options.hosts = &hosts;
    manager = std::make_unique<RunManager>(io.get_executor(), *store, hub, env, nullptr, options);
  }

  template <class T>
  T await(asio::awaitable<T> work) {
    std::optional<T> out;
    asio::co_spawn(io, std::move(work), [&out](std::exception_ptr e, T value) {
      if (e) std::rethrow_exception(e);
      out = std::move(value);
    });
    io.run();
    io.restart();
    REQUIRE(out.has_value());
    return std::move(*out);
  }

  Result<Submitted> submit(std::string spec) {
    proto::SubmitRequest request;
    request.spec_text = std::move(spec);
    request.workdir = dir.path().string();
    request.detach = true;
    return await(manager->submit(std::move(request), proto::Caller{1, 2, 3}));
  }

  std::string artifacts_tar(const std::string& run_id) {
    auto cursor = manager->artifacts(run_id);
    REQUIRE_MESSAGE(cursor.has_value(), (cursor ? "" : cursor.error().message()));
    return await([&]() -> asio::awaitable<std::string> {
      std::string tar;
      for (;;) {
        auto piece = co_await (*cursor)->next();
        REQUIRE(piece.has_value());
        if (piece->empty()) co_return tar;
        tar += *piece;
      }
    }());
  }
};

}  // namespace

TEST_CASE(
    "submission refuses remote steps on local, containers on a host without docker, and "
    "unknown hosts, naming the spec path and the host") {
  Fixture f;
  auto local_exec = f.submit(R"(
version: 1
name: x
jobs:
  job:
    steps: [ { exec: { cmd: "true" } } ]
)");
  REQUIRE_FALSE(local_exec.has_value());
  CHECK(local_exec.error().code() == Code::kInvalidArgument);
  CHECK(local_exec.error().message() ==
        "jobs.job.steps[0].exec: needs a remote host (set jobs.job.host to one of the daemon's "
        "hosts); host \"local\" runs build and run steps only");

  auto no_docker = f.submit(R"(
version: 1
name: x
jobs:
  job:
    host: tester1
    steps: [ { run: { image: busybox } } ]
)");
  REQUIRE_FALSE(no_docker.has_value());
  CHECK(no_docker.error().message() ==
        "jobs.job.host: host \"tester1\" has no `docker: true` in the daemon's config, so "
        "jobs.job.steps[0].run cannot run there");

  auto unknown = f.submit(R"(
version: 1
name: x
jobs:
  job:
    host: tester9
    steps: [ { exec: { cmd: "true" } } ]
)");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().message() ==
        "jobs.job.host: unknown host \"tester9\" (the daemon knows: local, docker1, tester1)");

  auto docker_run = f.submit(R"(
version: 1
name: x
jobs:
  job:
    host: docker1
    steps: [ { run: { image: busybox } } ]
)");
  CHECK(docker_run.has_value());
}

TEST_CASE("health reports every configured host with its address and state") {
  Fixture f;
  auto health = f.await(f.manager->health());
  REQUIRE(health.has_value());
  const proto::Json& hosts = (*health)["hosts"];
  REQUIRE(hosts.size() == 2);
  CHECK(hosts["tester1"] == proto::Json{{"address", "10.0.0.85:2222"},
                                        {"state", "failing"},
                                        {"sessions", 2},
                                        {"in_use", 1},
                                        {"error", "tester1 (10.0.0.85:22): connection refused"}});
  CHECK(hosts["docker1"]["address"] == "10.0.0.86:2222");
}

TEST_CASE("a download lands in the run's artifacts under the job key, inside the artifact tar") {
  Fixture f;
  auto submitted = f.submit(R"(
version: 1
name: x
jobs:
  flux:
    host: tester1
    steps:
      - exec: { cmd: "pytest" }
      - download: { src: odd/raw-results, dest: raw-results }
)");
  REQUIRE(submitted.has_value());
  auto info = f.manager->get_run(submitted->run_id);
  REQUIRE(info.has_value());
  CHECK(info->state == proto::RunState::kSucceeded);
  const auto file =
      f.dir.path() / "state/runs" / submitted->run_id / "artifacts/flux/raw-results/summary.json";
  CHECK(std::filesystem::exists(file));
  const std::string tar = f.artifacts_tar(submitted->run_id);
  CHECK(tar.find("logs/files/flux/raw-results/summary.json") != std::string::npos);
  CHECK(tar.find("hello from tester1") != std::string::npos);
}

}  // namespace odd::daemon
