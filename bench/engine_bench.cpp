// The odd side of the engine benchmarks (bench/run.sh): the same call sequences as the raw-API
// floor (bench/floor/floor.cpp), through engine::DockerClient, printing the same JSON lines.
//
//   odd_bench_engine p1 SOCKET IMAGE N        create, start, wait, logs, remove of `true`, N times
//   odd_bench_engine p2 SOCKET IMAGE N K      N such containers, K in flight
//   odd_bench_engine logs SOCKET CONTAINER    read and demultiplex an exited container's log
//   odd_bench_engine build SOCKET CONTEXT REPOSITORY CACHE_DIR
//                                             content-hashed build (a no-op when the tag exists)
//   odd_bench_engine hash CONTEXT             scan and hash a context with no digest cache

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/build_context.hpp"
#include "engine/docker_client.hpp"
#include "engine/image_builder.hpp"
#include "engine/log_stream.hpp"

namespace {

namespace asio = boost::asio;
using odd::Status;
using odd::engine::DockerClient;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return tv(usage.ru_utime) + tv(usage.ru_stime);
}

[[noreturn]] void fail(const Status& status) {
  std::fprintf(stderr, "odd_bench_engine: %s\n", status.message().c_str());
  std::exit(1);
}

// One container through the lifecycle the floor uses: create, start, wait, logs, remove.
asio::awaitable<void> run_true(DockerClient& client, const std::string& image) {
  odd::engine::ContainerConfig config;
  config.image = image;
  config.cmd = {"true"};
  config.network_mode = "none";
  auto id = co_await client.create_container(config);
  if (!id) fail(id.error());
  if (auto s = co_await client.start_container(*id); !s.ok()) fail(s);
  auto waited = co_await client.wait_container(*id, odd::engine::WaitCondition::kNotRunning);
  if (!waited) fail(waited.error());
  odd::engine::LogsOptions logs_options;
  auto logs = co_await client.container_logs(*id, logs_options);
  if (!logs) fail(logs.error());
  auto drained = co_await odd::engine::drain_output(**logs, false, [](auto, std::string_view) {});
  if (!drained.ok()) fail(drained);
  if (auto s = co_await client.remove_container(*id, true, false); !s.ok()) fail(s);
}

std::unique_ptr<DockerClient> connect(asio::io_context& io, const std::string& socket) {
  auto client = DockerClient::for_host(io.get_executor(), "unix://" + socket);
  if (!client) fail(client.error());
  return std::move(*client);
}

template <class Body>
void run(asio::io_context& io, Body body) {
  std::exception_ptr error;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

int p1(const std::string& socket, const std::string& image, int runs) {
  asio::io_context io;
  auto client = connect(io, socket);
  std::vector<double> per_run_ms;
  double total = 0;
  run(io, [&]() -> asio::awaitable<void> {
    if (auto s = co_await client->negotiate(); !s.ok()) fail(s);
    auto start = Clock::now();
    for (int i = 0; i < runs; ++i) {
      auto one = Clock::now();
      co_await run_true(*client, image);
      per_run_ms.push_back(seconds_since(one) * 1000);
    }
    total = seconds_since(start);
  });
  auto sorted = per_run_ms;
  std::sort(sorted.begin(), sorted.end());
  nlohmann::json out = {{"bench", "p1"},
                        {"runs", runs},
                        {"total_s", total},
                        {"per_run_ms", per_run_ms},
                        {"median_ms", sorted.empty() ? 0.0 : sorted[sorted.size() / 2]}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int p2(const std::string& socket, const std::string& image, int containers, int in_flight) {
  asio::io_context io;
  auto client = connect(io, socket);
  odd::Status negotiated;
  run(io, [&]() -> asio::awaitable<void> { negotiated = co_await client->negotiate(); });
  if (!negotiated.ok()) fail(negotiated);
  io.restart();
  int next = 0;
  auto start = Clock::now();
  for (int w = 0; w < in_flight; ++w) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          while (next < containers) {
            ++next;
            co_await run_true(*client, image);
          }
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
  }
  io.run();
  nlohmann::json out = {{"bench", "p2"},
                        {"containers", containers},
                        {"in_flight", in_flight},
                        {"wall_s", seconds_since(start)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int logs(const std::string& socket, const std::string& container) {
  asio::io_context io;
  auto client = connect(io, socket);
  std::uint64_t out_bytes = 0;
  std::uint64_t err_bytes = 0;
  double wall = 0;
  double cpu_start = cpu_seconds();
  run(io, [&]() -> asio::awaitable<void> {
    auto info = co_await client->inspect_container(container);
    if (!info) fail(info.error());
    auto start = Clock::now();
    odd::engine::LogsOptions options;
    auto reader = co_await client->container_logs(container, options);
    if (!reader) fail(reader.error());
    auto drained = co_await odd::engine::drain_output(
        **reader, info->tty, [&](odd::engine::StreamId stream, std::string_view piece) {
          (stream == odd::engine::StreamId::kStderr ? err_bytes : out_bytes) += piece.size();
        });
    if (!drained.ok()) fail(drained);
    wall = seconds_since(start);
  });
  nlohmann::json out = {{"stdout_bytes", out_bytes},
                        {"stderr_bytes", err_bytes},
                        {"wall_s", wall},
                        {"cpu_s", cpu_seconds() - cpu_start}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int build(const std::string& socket, const std::string& context, const std::string& repository,
          const std::string& cache_dir) {
  asio::io_context io;
  asio::thread_pool pool(2);
  auto client = connect(io, socket);
  odd::engine::ImageBuilder builder(*client, pool.get_executor(), cache_dir);
  odd::engine::BuiltImage built;
  double wall = 0;
  double cpu_start = cpu_seconds();
  run(io, [&]() -> asio::awaitable<void> {
    if (auto s = co_await client->negotiate(); !s.ok()) fail(s);
    odd::engine::ImageBuildSpec spec;
    spec.context_dir = context;
    spec.repository = repository;
    auto start = Clock::now();
    auto result = co_await builder.build(spec, nullptr, nullptr);
    if (!result) fail(result.error());
    wall = seconds_since(start);
    built = *result;
  });
  nlohmann::json out = {{"bench", "build"},
                        {"image", built.image},
                        {"cache_hit", built.cache_hit},
                        {"buildkit", built.buildkit},
                        {"context_bytes", built.context_bytes},
                        {"wall_s", wall},
                        {"cpu_s", cpu_seconds() - cpu_start}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int hash(const std::string& context) {
  odd::engine::ContextOptions options;
  options.context_dir = context;
  options.racy_window = std::chrono::nanoseconds(0);
  auto start = Clock::now();
  auto scanned = odd::engine::scan_context(options);
  if (!scanned) fail(scanned.error());
  double wall = seconds_since(start);
  nlohmann::json out = {{"bench", "hash"},
                        {"files", scanned->entries.size()},
                        {"bytes", scanned->total_size},
                        {"bytes_read", scanned->stats.bytes_read},
                        {"wall_s", wall},
                        {"mb_per_s", static_cast<double>(scanned->stats.bytes_read) / 1e6 / wall}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto usage = [] {
    std::fprintf(stderr,
                 "usage: odd_bench_engine p1 SOCKET IMAGE N\n"
                 "       odd_bench_engine p2 SOCKET IMAGE N K\n"
                 "       odd_bench_engine logs SOCKET CONTAINER\n"
                 "       odd_bench_engine build SOCKET CONTEXT REPOSITORY CACHE_DIR\n"
                 "       odd_bench_engine hash CONTEXT\n");
    return 2;
  };
  if (args.empty()) return usage();
  if (args[0] == "p1" && args.size() == 4) return p1(args[1], args[2], std::stoi(args[3]));
  if (args[0] == "p2" && args.size() == 5) {
    return p2(args[1], args[2], std::stoi(args[3]), std::stoi(args[4]));
  }
  if (args[0] == "logs" && args.size() == 3) return logs(args[1], args[2]);
  if (args[0] == "build" && args.size() == 5) return build(args[1], args[2], args[3], args[4]);
  if (args[0] == "hash" && args.size() == 2) return hash(args[1]);
  return usage();
}
