// Copying files into and out of a container as tar archives, against the real dockerd, with GNU
// tar making and unpacking the archives on the host.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/docker_client.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

constexpr Millis kLimit{30000};

// 100 KiB that no simple pattern reproduces by accident, the same on every run.
std::string binary_content() {
  std::string out;
  std::uint32_t x = 2463534242u;
  for (std::size_t i = 0; i < 100 * 1024; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    out.push_back(static_cast<char>(x & 0xff));
  }
  return out;
}

void run(const std::string& command) {
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
}

TEST_SUITE("engine integration") {
  TEST_CASE("a tree put into a container comes back unchanged from get_archive") {
    ContainerCleanup cleanup;
    TempDir dir;
    const auto src = dir.path() / "src";
    const auto dst = dir.path() / "dst";
    std::filesystem::create_directories(src / "odd-it-tree" / "sub");
    std::filesystem::create_directories(dst);
    const std::string text = "hello archive\nsecond line\n";
    const std::string binary = binary_content();
    write_file(src / "odd-it-tree" / "hello.txt", text);
    write_file(src / "odd-it-tree" / "sub" / "data.bin", binary);
    run("tar -C " + src.string() + " -cf " + (dir.path() / "in.tar").string() + " odd-it-tree");
    std::string archive = read_file(dir.path() / "in.tar");

    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ContainerConfig config = container_config(unique_name(), {"true"});
      const std::string id = co_await create_tracked(*client, config, cleanup);

      Status put = co_await client->put_archive(id, "/", std::move(archive));
      ODD_REQUIRE_OK(put);
      auto reader = co_await client->get_archive(id, "/odd-it-tree");
      ODD_REQUIRE_OK(reader);
      auto tar = co_await within(kLimit, read_all(**reader));
      REQUIRE(tar.has_value());
      ODD_REQUIRE_OK(*tar);
      write_file(dir.path() / "out.tar", **tar);

      auto missing = co_await client->get_archive(id, "/no-such-path");
      REQUIRE_FALSE(missing.has_value());
      ODD_CHECK_CODE(missing.error(), Code::kNotFound);
      const std::string nowhere_archive = read_file(dir.path() / "in.tar");
      Status nowhere = co_await client->put_archive(id, "/no-such-dir", nowhere_archive);
      ODD_CHECK_CODE(nowhere, Code::kNotFound);
    }());

    run("tar -C " + dst.string() + " -xf " + (dir.path() / "out.tar").string());
    CHECK(read_file(dst / "odd-it-tree" / "hello.txt") == text);
    CHECK(first_difference(read_file(dst / "odd-it-tree" / "sub" / "data.bin"), binary) ==
          std::string::npos);
  }
}

}  // namespace
}  // namespace odd::integration
