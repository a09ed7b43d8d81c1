// engine::ImageBuilder against the test dockerd: content-hash tags, cache hits without a build
// request, build args, .dockerignore against the docker CLI's own, failures with dockerd's words,
// and a large context within a memory bound.

#include "engine/image_builder.hpp"

#include <unistd.h>

#include <boost/asio/thread_pool.hpp>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/log_stream.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

using engine::BuiltImage;
using engine::ImageBuilder;
using engine::ImageBuildSpec;

// A context holding Debian's static busybox, so images can be built FROM scratch and run.
void write_busybox_context(const std::filesystem::path& dir, std::string_view dockerfile) {
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file("/bin/busybox", dir / "busybox",
                             std::filesystem::copy_options::overwrite_existing);
  write_file(dir / "Dockerfile", dockerfile);
}

constexpr std::string_view kBusyboxDockerfile =
    "FROM scratch\n"
    "COPY busybox /bin/busybox\n"
    "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";

struct Fixture {
  TempDir dir;
  TempDir cache;
  boost::asio::thread_pool pool{2};
  ContainerCleanup cleanup;
  std::string repository = "odd-it/" + unique_name();

  ImageBuildSpec spec(const std::filesystem::path& context) const {
    ImageBuildSpec s;
    s.context_dir = context;
    s.repository = repository;
    s.timeout = Millis(240000);
    return s;
  }
};

asio::awaitable<Result<BuiltImage>> build(ImageBuilder& builder, const ImageBuildSpec& spec,
                                          std::vector<std::string>* output = nullptr) {
  co_return co_await builder.build(spec, nullptr, [output](std::string_view line) {
    if (output != nullptr) output->emplace_back(line);
  });
}

// Runs `sh -c script` in a container of `image`; returns what it printed on stdout and its exit
// code.
asio::awaitable<std::pair<std::string, std::int64_t>> run_in(engine::DockerClient& client,
                                                             const std::string& image,
                                                             std::string script,
                                                             ContainerCleanup& cleanup) {
  std::vector<std::string> cmd{"sh", "-c", std::move(script)};
  auto config = container_config(unique_name(), std::move(cmd));
  config.image = image;
  auto id = co_await create_tracked(client, config, cleanup);
  auto wait = co_await client.begin_wait(id, engine::WaitCondition::kNextExit);
  ODD_REQUIRE_OK(wait);
  Status started = co_await client.start_container(id);
  ODD_REQUIRE_OK(started);
  auto result = co_await (*wait)->result();
  ODD_REQUIRE_OK(result);
  engine::LogsOptions options;
  auto logs = co_await client.container_logs(id, options);
  ODD_REQUIRE_OK(logs);
  std::string out;
  Status drained = co_await engine::drain_output(
      **logs, false, [&](engine::StreamId stream, std::string_view piece) {
        if (stream == engine::StreamId::kStdout) out.append(piece);
      });
  ODD_REQUIRE_OK(drained);
  co_return std::make_pair(out, result->status_code);
}

TEST_CASE("a FROM scratch build with a RUN step gives a runnable image tagged by its hash") {
  Fixture f;
  write_busybox_context(f.dir.path(), kBusyboxDockerfile);
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto built = co_await build(builder, f.spec(f.dir.path()));
    ODD_REQUIRE_OK(built);
    f.cleanup.add_image(built->image);
    CHECK_FALSE(built->cache_hit);
    CHECK(built->tag.size() == 12);
    CHECK(built->image == f.repository + ":" + built->tag);
    CHECK(built->hash.starts_with(built->tag));
    auto info = co_await client->inspect_image(built->image);
    ODD_REQUIRE_OK(info);
    CHECK(info->id == built->image_id);
    CHECK(info->labels["odd.content-hash"] == built->hash);
    auto [out, code] = co_await run_in(*client, built->image, "echo ran", f.cleanup);
    CHECK(out == "ran\n");
    CHECK(code == 0);
  }());
}

TEST_CASE("a second build of unchanged inputs is a cache hit that sends no build request") {
  Fixture f;
  write_busybox_context(f.dir.path(), kBusyboxDockerfile);
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto first = co_await build(builder, f.spec(f.dir.path()));
    ODD_REQUIRE_OK(first);
    f.cleanup.add_image(first->image);

    // Builds upload on a connection of their own; a cache hit only inspects on the pooled one.
    auto opened = client->http().connections_opened();
    std::filesystem::last_write_time(f.dir.path() / "busybox",
                                     std::filesystem::file_time_type::clock::now());
    auto second = co_await build(builder, f.spec(f.dir.path()));
    ODD_REQUIRE_OK(second);
    CHECK(second->cache_hit);
    CHECK(second->image == first->image);
    CHECK(second->image_id == first->image_id);
    CHECK(client->http().connections_opened() == opened);

    auto forced_spec = f.spec(f.dir.path());
    forced_spec.no_cache = true;
    auto forced = co_await build(builder, forced_spec);
    ODD_REQUIRE_OK(forced);
    CHECK_FALSE(forced->cache_hit);
    CHECK(forced->image == first->image);
    CHECK(client->http().connections_opened() > opened);
  }());
}

TEST_CASE("build args reach the image and change its tag") {
  Fixture f;
  write_busybox_context(f.dir.path(),
                        std::string(kBusyboxDockerfile) +
                            "ARG GREETING=hello\n"
                            "RUN [\"/bin/sh\", \"-c\", \"echo $GREETING > /greeting\"]\n");
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto spec = f.spec(f.dir.path());
    spec.build_args["GREETING"] = "bonjour";
    auto built = co_await build(builder, spec);
    ODD_REQUIRE_OK(built);
    f.cleanup.add_image(built->image);
    auto [out, code] = co_await run_in(*client, built->image, "cat /greeting", f.cleanup);
    CHECK(out == "bonjour\n");

    spec.build_args["GREETING"] = "hallo";
    auto other = co_await build(builder, spec);
    ODD_REQUIRE_OK(other);
    f.cleanup.add_image(other->image);
    CHECK(other->tag != built->tag);
    CHECK_FALSE(other->cache_hit);
  }());
}

TEST_CASE("changing an included file changes the tag, changing an ignored file does not") {
  Fixture f;
  write_busybox_context(f.dir.path(), std::string(kBusyboxDockerfile) + "COPY . /ctx\n");
  write_file(f.dir.path() / ".dockerignore", "secret.txt\nlogs/\n");
  write_file(f.dir.path() / "secret.txt", "s3cr3t\n");
  std::filesystem::create_directories(f.dir.path() / "logs");
  write_file(f.dir.path() / "logs/a.log", "noise\n");
  write_file(f.dir.path() / "app.txt", "v1\n");
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto first = co_await build(builder, f.spec(f.dir.path()));
    ODD_REQUIRE_OK(first);
    f.cleanup.add_image(first->image);
    auto [listing, code] = co_await run_in(
        *client, first->image, "cd /ctx && find . -type f | sort; test ! -e secret.txt", f.cleanup);
    CHECK(code == 0);
    CHECK(listing.find("./app.txt") != std::string::npos);
    CHECK(listing.find("secret") == std::string::npos);
    CHECK(listing.find("a.log") == std::string::npos);

    write_file(f.dir.path() / "secret.txt", "rotated\n");
    write_file(f.dir.path() / "logs/b.log", "more noise\n");
    auto same = co_await build(builder, f.spec(f.dir.path()));
    ODD_REQUIRE_OK(same);
    CHECK(same->tag == first->tag);
    CHECK(same->cache_hit);

    write_file(f.dir.path() / "app.txt", "v2\n");
    auto changed = co_await build(builder, f.spec(f.dir.path()));
    ODD_REQUIRE_OK(changed);
    f.cleanup.add_image(changed->image);
    CHECK(changed->tag != first->tag);
  }());
}

// Lists the regular files and links under /ctx of an image, by running it.
asio::awaitable<std::string> listing_of(engine::DockerClient& client, const std::string& image,
                                        ContainerCleanup& cleanup) {
  auto [out, code] = co_await run_in(client, image, "cd /ctx && find . ! -type d | sort", cleanup);
  CHECK(code == 0);
  co_return out;
}

TEST_CASE("what lands in the image matches the docker CLI's .dockerignore handling") {
  Fixture f;
  const auto& ctx = f.dir.path();
  write_busybox_context(ctx, std::string(kBusyboxDockerfile) + "COPY . /ctx\n");
  write_file(ctx / ".dockerignore",
             "# build outputs\n"
             "build/\n"
             "**/*.tmp\n"
             "!keep.tmp\n"
             "docs/**/*.md\n"
             "!docs/README.md\n"
             "/top-only.txt\n"
             "src/gen?/\n"
             "*.[oa]\n"
             "vendor\n"
             "!vendor/keep/me.txt\n");
  for (const char* path : {"build/out.bin",
                           "build/sub/x",
                           "a.tmp",
                           "keep.tmp",
                           "src/b.tmp",
                           "src/deep/c.tmp",
                           "docs/README.md",
                           "docs/guide/intro.md",
                           "docs/guide/img.png",
                           "top-only.txt",
                           "src/top-only.txt",
                           "src/gen1/file.c",
                           "src/gen10/file.c",
                           "src/main.c",
                           "main.o",
                           "lib.a",
                           "lib.so",
                           "vendor/x.go",
                           "vendor/keep/me.txt",
                           "vendor/keep/not-me.txt",
                           "README"}) {
    std::filesystem::create_directories((ctx / path).parent_path());
    write_file(ctx / path, std::string("content of ") + path + "\n");
  }
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto built = co_await build(builder, f.spec(ctx));
    ODD_REQUIRE_OK(built);
    f.cleanup.add_image(built->image);
    std::string ours = co_await listing_of(*client, built->image, f.cleanup);

    std::string theirs_tag = f.repository + ":cli";
    f.cleanup.add_image(theirs_tag);
    std::string command = "DOCKER_BUILDKIT=0 " + docker_cli() + " -H " + docker_host() +
                          " build -q --network none -t " + theirs_tag + " " + ctx.string() +
                          " >/dev/null";
    REQUIRE(std::system(command.c_str()) == 0);
    std::string theirs = co_await listing_of(*client, theirs_tag, f.cleanup);
    CHECK(ours == theirs);
    CHECK(ours.find("./keep.tmp") != std::string::npos);
    CHECK(ours.find("./src/main.c") != std::string::npos);
  }());
}

TEST_CASE("a failing RUN step returns dockerd's error text and names the step") {
  Fixture f;
  write_busybox_context(f.dir.path(),
                        std::string(kBusyboxDockerfile) +
                            "RUN [\"/bin/sh\", \"-c\", \"echo about to fail; exit 3\"]\n");
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    std::vector<std::string> output;
    auto built = co_await build(builder, f.spec(f.dir.path()), &output);
    REQUIRE_FALSE(built.has_value());
    ODD_CHECK_CODE(built.error(), Code::kFailedPrecondition);
    CHECK(built.error().message().find("exit code: 3") != std::string::npos);
    CHECK(built.error().message().find("RUN") != std::string::npos);
    bool printed = false;
    for (const auto& line : output) printed = printed || line == "about to fail";
    CHECK(printed);
  }());
}

TEST_CASE("bad build inputs are refused with errors that name the path") {
  Fixture f;
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto missing = co_await build(builder, f.spec(f.dir.path() / "nope"));
    REQUIRE_FALSE(missing.has_value());
    ODD_CHECK_CODE(missing.error(), Code::kNotFound);
    CHECK(missing.error().message().find("nope") != std::string::npos);

    write_file(f.dir.path() / "README", "no Dockerfile here\n");
    auto no_dockerfile = co_await build(builder, f.spec(f.dir.path()));
    REQUIRE_FALSE(no_dockerfile.has_value());
    ODD_CHECK_CODE(no_dockerfile.error(), Code::kNotFound);
    CHECK(no_dockerfile.error().message().find("Dockerfile") != std::string::npos);

    write_file(f.dir.path() / "Dockerfile", "FROM scratch\n");
    std::filesystem::create_symlink("/etc/passwd", f.dir.path() / "escape");
    auto escaping = co_await build(builder, f.spec(f.dir.path()));
    REQUIRE_FALSE(escaping.has_value());
    ODD_CHECK_CODE(escaping.error(), Code::kInvalidArgument);
    CHECK(escaping.error().message().find("escape") != std::string::npos);
  }());
}

// A field of /proc/self/status in KiB ("VmHWM", "VmRSS").
long status_kib(std::string_view field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return std::stol(line.substr(field.size() + 1));
    }
  }
  return -1;
}

// Starts a new peak-RSS measurement: VmHWM is reset to the current RSS.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

TEST_CASE("a 200 MB context is built in bounded memory") {
  Fixture f;
  write_busybox_context(
      f.dir.path(), std::string(kBusyboxDockerfile) +
                        "COPY big.bin /big.bin\n"
                        "RUN [\"/bin/sh\", \"-c\", \"test $(wc -c < /big.bin) -eq 209715200\"]\n");
  {
    std::ofstream big(f.dir.path() / "big.bin", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (int i = 0; i < 200; ++i) {
      block[0] = static_cast<char>(i);
      big.write(block.data(), static_cast<std::streamsize>(block.size()));
    }
  }
  reset_peak_rss();
  long before = status_kib("VmRSS");
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto built = co_await build(builder, f.spec(f.dir.path()));
    ODD_REQUIRE_OK(built);
    f.cleanup.add_image(built->image);
    CHECK(built->context_bytes > 200u * 1024 * 1024);
    CHECK_FALSE(built->cache_hit);
  }());
  long grown_kib = status_kib("VmHWM") - before;
  MESSAGE("peak RSS grew by " << grown_kib / 1024 << " MiB for a 200 MiB context");
  CHECK(grown_kib < 64 * 1024);
}

TEST_CASE("concurrent builds of one tag run one build and the other waits for its result") {
  Fixture f;
  write_busybox_context(f.dir.path(), kBusyboxDockerfile);
  run_io([&]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    auto spec = f.spec(f.dir.path());
    auto both = co_await (build(builder, spec) && build(builder, spec));
    auto& a = std::get<0>(both);
    auto& b = std::get<1>(both);
    ODD_REQUIRE_OK(a);
    ODD_REQUIRE_OK(b);
    f.cleanup.add_image(a->image);
    CHECK(a->image == b->image);
    CHECK(a->cache_hit != b->cache_hit);
  }());
}

TEST_CASE("pruning keeps the newest images of a repository") {
  Fixture f;
  write_busybox_context(f.dir.path(), std::string(kBusyboxDockerfile) + "COPY v.txt /v.txt\n");
  run_io([&]() -> asio::awaitable<void> {
    auto client = co_await connect();
    ImageBuilder builder(*client, f.pool.get_executor(), f.cache.path());
    std::vector<std::string> images;
    for (int i = 0; i < 3; ++i) {
      write_file(f.dir.path() / "v.txt", "version " + std::to_string(i) + "\n");
      auto built = co_await build(builder, f.spec(f.dir.path()));
      ODD_REQUIRE_OK(built);
      f.cleanup.add_image(built->image);
      images.push_back(built->image);
      co_await sleep_for(Millis(1100));  // Created has whole seconds
    }
    Status pruned = co_await builder.prune(f.repository, 1);
    ODD_REQUIRE_OK(pruned);
    auto newest = co_await client->inspect_image(images[2]);
    ODD_CHECK_OK(newest);
    for (int i = 0; i < 2; ++i) {
      auto old = co_await client->inspect_image(images[static_cast<std::size_t>(i)]);
      REQUIRE_FALSE(old.has_value());
      ODD_CHECK_CODE(old.error(), Code::kNotFound);
    }
  }());
}

}  // namespace
}  // namespace odd::integration
