#include "tests/integration/support.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <system_error>

#include "engine/demux.hpp"

namespace odd::integration {

namespace {

constexpr std::string_view kDefaultImage = "odd-test/busybox:1";
constexpr std::string_view kDefaultDockerCli = "/usr/bin/docker";

std::string env_or(const char* name, std::string_view fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::string(fallback);
}

std::string pid_text() { return std::to_string(::getpid()); }

template <class Stream>
asio::awaitable<Result<std::string>> read_to_end(Stream& stream) {
  std::string out;
  std::array<char, 64 * 1024> chunk;
  for (;;) {
    auto n = co_await stream.read_some(asio::buffer(chunk));
    if (!n) co_return n.error();
    if (*n == 0) co_return out;
    out.append(chunk.data(), *n);
  }
}

}  // namespace

const std::string& docker_host() {
  static const std::string host = env_or("ODD_TEST_DOCKER_HOST", "");
  if (host.empty()) {
    FAIL("ODD_TEST_DOCKER_HOST is not set: run through tests/support/with-dockerd.sh");
  }
  return host;
}

const std::string& test_image() {
  static const std::string image = env_or("ODD_TEST_IMAGE", kDefaultImage);
  return image;
}

const std::string& docker_cli() {
  static const std::string cli = env_or("ODD_TEST_DOCKER_CLI", kDefaultDockerCli);
  return cli;
}

std::string unique_name() {
  static std::atomic<unsigned> counter{0};
  return "odd-it-" + pid_text() + "-" + std::to_string(++counter);
}

template <>
void run_io(asio::awaitable<void> task) {
  asio::io_context io;
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  io.run();
  if (error) std::rethrow_exception(error);
  REQUIRE_MESSAGE(done, "the test coroutine never completed");
}

asio::awaitable<std::unique_ptr<engine::DockerClient>> connect(
    engine::DockerClientOptions options) {
  auto executor = co_await asio::this_coro::executor;
  auto client = engine::DockerClient::for_host(executor, docker_host(), std::move(options));
  ODD_REQUIRE_OK(client);
  co_return std::move(*client);
}

engine::ContainerConfig container_config(const std::string& name, std::vector<std::string> cmd) {
  engine::ContainerConfig config;
  config.name = name;
  config.image = test_image();
  config.cmd = std::move(cmd);
  config.network_mode = "none";
  config.labels = {{"odd.it.pid", pid_text()}, {"odd.it.name", name}};
  return config;
}

asio::awaitable<std::string> create_tracked(engine::DockerClient& client,
                                            const engine::ContainerConfig& config,
                                            ContainerCleanup& cleanup) {
  auto id = co_await client.create_container(config);
  ODD_REQUIRE_OK(id);
  cleanup.add(*id);
  co_return *id;
}

ContainerCleanup::~ContainerCleanup() {
  if (containers_.empty() && images_.empty()) return;
  const std::string host = env_or("ODD_TEST_DOCKER_HOST", "");
  if (host.empty()) return;
  try {
    asio::io_context io;
    auto client = engine::DockerClient::for_host(io.get_executor(), host);
    if (!client) return;
    auto remove_all = [&]() -> asio::awaitable<void> {
      for (const auto& id : containers_) {
        Status s = co_await (*client)->remove_container(id, true, true);
        if (!s.ok() && s.code() != Code::kNotFound) {
          std::cerr << "cleanup: " << s.to_string() << "\n";
        }
      }
      for (const auto& image : images_) {
        Status s = co_await (*client)->remove_image(image, true, false);
        if (!s.ok() && s.code() != Code::kNotFound) {
          std::cerr << "cleanup: " << s.to_string() << "\n";
        }
      }
    };
    asio::co_spawn(io, remove_all(), [](std::exception_ptr) {});
    io.run();
  } catch (const std::exception& e) {
    std::cerr << "cleanup failed: " << e.what() << "\n";
  }
}

TempDir::TempDir() {
  std::string pattern = "/tmp/odd-it.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp");
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE_MESSAGE(out.good(), "cannot write " << path.string());
}

asio::awaitable<Result<std::string>> read_all(engine::BodyReader& reader) {
  co_return co_await read_to_end(reader);
}

asio::awaitable<Result<std::string>> read_all(engine::RawStream& stream) {
  co_return co_await read_to_end(stream);
}

Result<Output> demux(std::string_view bytes, bool raw) {
  engine::Demuxer demuxer(raw);
  Output output;
  Status s = demuxer.feed(bytes, [&](engine::StreamId stream, std::string_view piece) {
    if (stream == engine::StreamId::kStderr) {
      output.err.append(piece);
    } else if (stream == engine::StreamId::kStdout) {
      output.out.append(piece);
    }
  });
  if (!s.ok()) return s;
  if (!demuxer.at_frame_boundary()) {
    return invalid_argument("the stream ends inside a frame at offset " +
                            std::to_string(demuxer.offset()));
  }
  return output;
}

std::size_t first_difference(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return i;
  }
  return a.size() == b.size() ? std::string::npos : n;
}

asio::awaitable<void> sleep_for(Millis duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace odd::integration
