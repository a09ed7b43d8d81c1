// Container output through attach and /logs, demultiplexed (DESIGN §7): large interleaved
// streams byte for byte (and against `docker logs`, DESIGN §12), lines longer than dockerd's
// 16 KiB frames, and TTY containers whose streams are raw.

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/demux.hpp"
#include "engine/docker_client.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

using engine::StreamId;
using engine::WaitCondition;

constexpr Millis kLimit{30000};
constexpr Millis kBulkLimit{180000};

// ---- The large-output test's content: `yes LINE | head -c SIZE`, rebuilt here ----

constexpr std::size_t kStdoutBytes = 50u << 20;
constexpr std::size_t kStderrBytes = 10u << 20;
// Lines of a length real tests print: with 40-byte lines dockerd's json-file log makes /logs take
// several times longer (verified: 16 s against 4 s for these 60 MB), which is not under test.
constexpr std::string_view kStdoutLine =
    "0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnopqrstuvwxyz-"
    "0123456789abcdefghijklmnopqrstuvwxyz-0123456789abcdefghijklmnopqrstuvwxyz-stdout";
constexpr std::string_view kStderrLine =
    "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE-stderr-"
    "EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE";

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    REQUIRE(ctx_ != nullptr);
    REQUIRE(EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1);
  }
  void update(std::string_view bytes) {
    EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size());
    size_ += bytes.size();
  }
  // "<size> bytes, sha256 <hex>": equal exactly when the content is (for our purposes).
  std::string finish() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest.data(), &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = std::to_string(size_) + " bytes, sha256 ";
    for (unsigned int i = 0; i < len; ++i) {
      out += kHex[digest[i] >> 4];
      out += kHex[digest[i] & 0xf];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
  std::uint64_t size_ = 0;
};

// The digest of `line` + '\n' repeated and cut at `size` bytes, as `yes LINE | head -c` prints.
std::string expected_digest(std::string_view line, std::size_t size) {
  std::string block;
  while (block.size() < (1u << 20)) {
    block.append(line);
    block.push_back('\n');
  }
  // A whole number of lines per block keeps the pattern continuous across blocks.
  Sha256 sha;
  std::size_t left = size;
  while (left > 0) {
    const std::size_t n = std::min(left, block.size());
    sha.update(std::string_view(block).substr(0, n));
    left -= n;
  }
  return sha.finish();
}

struct Digests {
  std::string out;
  std::string err;
};

// Reads `stream` to its end, demultiplexing as it goes and hashing each output stream, so
// tens of megabytes are never held.
template <class Stream>
asio::awaitable<Result<Digests>> digest_stream(Stream& stream, bool raw) {
  engine::Demuxer demuxer(raw);
  Sha256 out;
  Sha256 err;
  std::vector<char> chunk(256 * 1024);
  for (;;) {
    auto n = co_await stream.read_some(asio::buffer(chunk));
    if (!n) co_return n.error();
    if (*n == 0) break;
    Status s =
        demuxer.feed(std::string_view(chunk.data(), *n), [&](StreamId id, std::string_view piece) {
          if (id == StreamId::kStdout) out.update(piece);
          if (id == StreamId::kStderr) err.update(piece);
        });
    if (!s.ok()) co_return s;
  }
  if (!demuxer.at_frame_boundary()) co_return invalid_argument("the stream ends inside a frame");
  co_return Digests{out.finish(), err.finish()};
}

std::string file_digest(const std::filesystem::path& path) {
  Sha256 sha;
  sha.update(read_file(path));
  return sha.finish();
}

// The multiplexed frames of a whole /logs body: each frame's stream and payload size.
std::vector<std::pair<int, std::size_t>> frames_of(std::string_view bytes) {
  std::vector<std::pair<int, std::size_t>> frames;
  std::size_t i = 0;
  while (i + 8 <= bytes.size()) {
    std::size_t size = 0;
    for (std::size_t k = 4; k < 8; ++k) {
      size = (size << 8) | static_cast<unsigned char>(bytes[i + k]);
    }
    frames.emplace_back(static_cast<int>(bytes[i]), size);
    i += 8 + size;
  }
  return frames;
}

// Lines of one stream as LineSplitter cuts them: the complete ones, and whatever was not.
struct Lines {
  std::vector<std::string> complete;
  std::vector<std::string> partial;
};

Lines split_lines(std::string_view stream, std::size_t feed_size) {
  engine::LineSplitter splitter;
  Lines lines;
  auto sink = [&](std::string_view piece, bool complete) {
    (complete ? lines.complete : lines.partial).emplace_back(piece);
  };
  for (std::size_t i = 0; i < stream.size(); i += feed_size) {
    splitter.push(stream.substr(i, feed_size), sink);
  }
  splitter.finish(sink);
  return lines;
}

TEST_SUITE("engine integration") {
  TEST_CASE(
      "50 MB of stdout and 10 MB of stderr written concurrently arrive byte for byte through "
      "attach and logs, as docker logs shows them") {
    ContainerCleanup cleanup;
    TempDir dir;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      const std::string script = "(yes '" + std::string(kStderrLine) + "' | head -c " +
                                 std::to_string(kStderrBytes) + " >&2) & yes '" +
                                 std::string(kStdoutLine) + "' | head -c " +
                                 std::to_string(kStdoutBytes) + "; wait";
      engine::ContainerConfig config = container_config(unique_name(), {"sh", "-c", script});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      const Digests expected{expected_digest(kStdoutLine, kStdoutBytes),
                             expected_digest(kStderrLine, kStderrBytes)};

      auto wait = co_await client->begin_wait(id, WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      engine::AttachOptions attach_options;
      auto attached = co_await client->attach_container(id, attach_options);
      ODD_REQUIRE_OK(attached);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      auto live = co_await within(kBulkLimit, digest_stream(**attached, false));
      REQUIRE_MESSAGE(live.has_value(), "the attach stream did not end");
      ODD_REQUIRE_OK(*live);
      CHECK((*live)->out == expected.out);
      CHECK((*live)->err == expected.err);
      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE(result.has_value());
      ODD_REQUIRE_OK(*result);
      CHECK((*result)->status_code == 0);

      engine::LogsOptions logs_options;
      auto logs = co_await client->container_logs(id, logs_options);
      ODD_REQUIRE_OK(logs);
      auto stored = co_await within(kBulkLimit, digest_stream(**logs, false));
      REQUIRE_MESSAGE(stored.has_value(), "the logs stream did not end");
      ODD_REQUIRE_OK(*stored);
      CHECK((*stored)->out == expected.out);
      CHECK((*stored)->err == expected.err);

      // The reference: the docker CLI's own demultiplexing of the same /logs.
      const auto out_file = dir.path() / "out";
      const auto err_file = dir.path() / "err";
      const std::string command = docker_cli() + " -H " + docker_host() + " logs " + id + " > " +
                                  out_file.string() + " 2> " + err_file.string();
      REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
      CHECK(file_digest(out_file) == (*stored)->out);
      CHECK(file_digest(err_file) == (*stored)->err);
    }());
  }

  TEST_CASE(
      "lines of 100 KiB that dockerd splits into 16 KiB frames come out of LineSplitter whole") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      constexpr std::size_t kLineBytes = 100 * 1024;
      std::vector<std::string> expected;
      for (char c : std::string_view("abcd")) expected.emplace_back(kLineBytes, c);
      engine::ContainerConfig config = container_config(
          unique_name(), {"sh", "-c",
                          "for c in a b c d; do head -c " + std::to_string(kLineBytes) +
                              " /dev/zero | tr '\\0' $c; echo; done"});
      const std::string id = co_await create_tracked(*client, config, cleanup);

      auto wait = co_await client->begin_wait(id, WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      engine::AttachOptions attach_options;
      auto attached = co_await client->attach_container(id, attach_options);
      ODD_REQUIRE_OK(attached);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      auto attach_bytes = co_await within(kLimit, read_all(**attached));
      REQUIRE(attach_bytes.has_value());
      ODD_REQUIRE_OK(*attach_bytes);
      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE(result.has_value());
      ODD_REQUIRE_OK(*result);
      CHECK((*result)->status_code == 0);

      engine::LogsOptions logs_options;
      auto logs = co_await client->container_logs(id, logs_options);
      ODD_REQUIRE_OK(logs);
      auto log_bytes = co_await within(kLimit, read_all(**logs));
      REQUIRE(log_bytes.has_value());
      ODD_REQUIRE_OK(*log_bytes);

      // The case under test: no frame holds a whole line.
      const auto frames = frames_of(**log_bytes);
      CHECK(frames.size() > expected.size());
      for (const auto& [stream, size] : frames) CHECK(size <= 16u * 1024);

      const std::array<const std::string*, 2> captured{&**attach_bytes, &**log_bytes};
      for (const std::string* bytes : captured) {
        auto output = demux(*bytes, false);
        ODD_REQUIRE_OK(output);
        CHECK(output->err.empty());
        const std::array<std::size_t, 3> feed_sizes{7, 4096, output->out.size()};
        for (std::size_t feed_size : feed_sizes) {
          CAPTURE(feed_size);
          const Lines lines = split_lines(output->out, feed_size);
          CHECK(lines.partial.empty());
          REQUIRE(lines.complete.size() == expected.size());
          for (std::size_t i = 0; i < expected.size(); ++i) {
            CAPTURE(i);
            CHECK(first_difference(lines.complete[i], expected[i]) == std::string::npos);
          }
        }
      }
    }());
  }

  TEST_CASE("a TTY container's attach and logs streams are raw, with the TTY's CRLF line ends") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ContainerConfig config =
          container_config(unique_name(), {"sh", "-c", "printf 'hello\\nworld\\n'; exit 4"});
      config.tty = true;
      const std::string id = co_await create_tracked(*client, config, cleanup);
      auto info = co_await client->inspect_container(id);
      ODD_REQUIRE_OK(info);
      REQUIRE(info->tty);

      auto wait = co_await client->begin_wait(id, WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      engine::AttachOptions attach_options;
      auto attached = co_await client->attach_container(id, attach_options);
      ODD_REQUIRE_OK(attached);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);
      auto attach_bytes = co_await within(kLimit, read_all(**attached));
      REQUIRE(attach_bytes.has_value());
      ODD_REQUIRE_OK(*attach_bytes);
      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE(result.has_value());
      ODD_REQUIRE_OK(*result);
      CHECK((*result)->status_code == 4);

      engine::LogsOptions logs_options;
      auto logs = co_await client->container_logs(id, logs_options);
      ODD_REQUIRE_OK(logs);
      auto log_bytes = co_await within(kLimit, read_all(**logs));
      REQUIRE(log_bytes.has_value());
      ODD_REQUIRE_OK(*log_bytes);

      const std::array<const std::string*, 2> captured{&**attach_bytes, &**log_bytes};
      for (const std::string* bytes : captured) {
        auto output = demux(*bytes, info->tty);
        ODD_REQUIRE_OK(output);
        CHECK(output->out == "hello\r\nworld\r\n");
        CHECK(output->err.empty());
      }
    }());
  }
}

}  // namespace
}  // namespace odd::integration
