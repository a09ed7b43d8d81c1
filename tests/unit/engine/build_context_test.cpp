#include "engine/build_context.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace odd::engine {
namespace {

namespace fs = std::filesystem;

constexpr std::time_t kPast = 1700000000;  // 2023-11-14, well outside any racy window

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/odd-ctx-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    // Put back permissions a test took away, so everything can be removed.
    for (auto it = fs::recursive_directory_iterator(path_, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_symlink()) ::chmod(it->path().c_str(), 0755);
    }
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(std::string_view rel) const { return path_ / rel; }

 private:
  fs::path path_;
};

void set_mtime(const fs::path& p, std::time_t when) {
  const timespec times[2] = {{when, 0}, {when, 0}};
  REQUIRE(::utimensat(AT_FDCWD, p.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

void write(const fs::path& p, std::string_view content, mode_t mode = 0644) {
  fs::create_directories(p.parent_path());
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
  }
  REQUIRE(::chmod(p.c_str(), mode) == 0);
  set_mtime(p, kPast);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A small context: a Dockerfile, a .dockerignore, nested files, an ignored log.
void populate(const TempDir& dir) {
  write(dir / "Dockerfile", "FROM scratch\nCOPY . /\n");
  write(dir / ".dockerignore", "*.log\n");
  write(dir / "src/main.c", "int main(void) { return 0; }\n");
  write(dir / "src/util/helpers.c", "/* helpers */\n", 0600);
  write(dir / "run.sh", "#!/bin/sh\necho hi\n", 0755);
  write(dir / "debug.log", "noise\n");
  fs::create_directories(dir / "empty");
}

ContextOptions options_for(const TempDir& dir) {
  ContextOptions o;
  o.context_dir = dir.path();
  return o;
}

BuildContext scanned(const ContextOptions& options) {
  auto c = scan_context(options);
  REQUIRE_MESSAGE(c.has_value(), c.error().message());
  return *c;
}

std::string stream_all(const BuildContext& context, std::size_t chunk) {
  ContextTarStream stream(context);
  std::string out;
  std::vector<char> buf(chunk);
  while (true) {
    auto n = stream.read(buf.data(), buf.size());
    REQUIRE_MESSAGE(n.has_value(), n.error().message());
    if (*n == 0) break;
    out.append(buf.data(), *n);
  }
  return out;
}

std::vector<std::string> paths_of(const BuildContext& c) {
  std::vector<std::string> out;
  for (const ContextEntry& e : c.entries) out.push_back(e.path);
  return out;
}

const ContextEntry* find(const BuildContext& c, std::string_view path) {
  for (const ContextEntry& e : c.entries) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

std::string hash_of(const ContextOptions& options, const HashInputs& inputs = {}) {
  return content_hash(scanned(options), inputs);
}

// Runs `shell` (GNU tar and friends) and returns its stdout; the test fails on a non-zero exit.
std::string run(const std::string& shell, const TempDir& scratch) {
  const fs::path out = scratch / "cmd.out";
  const std::string line = "(" + shell + ") > '" + out.string() + "' 2>&1";
  const int rc = std::system(line.c_str());
  const std::string text = slurp(out);
  INFO(shell, "\n", text);
  REQUIRE(rc == 0);
  return text;
}

// Runs `body` as an unprivileged user when we are root, since root reads any file; returns
// whether `body` returned true.
bool as_unprivileged(const std::function<bool()>& body) {
  if (::geteuid() != 0) return body();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    ::_exit(body() ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_SUITE("engine/build_context") {
  TEST_CASE("a scan lists what dockerd would get, sorted, without ignored files") {
    TempDir dir;
    populate(dir);
    const BuildContext c = scanned(options_for(dir));
    CHECK(paths_of(c) == std::vector<std::string>{".dockerignore", "Dockerfile", "empty", "run.sh",
                                                  "src", "src/main.c", "src/util",
                                                  "src/util/helpers.c"});
    CHECK(c.dockerfile == "Dockerfile");
    CHECK(c.total_size == 6 + 22 + 29 + 14 + 18);
    CHECK(find(c, "run.sh")->mode == 0755);
    CHECK(find(c, "src/util/helpers.c")->mode == 0600);
    CHECK(find(c, "src")->type == ContextEntry::kDir);
    CHECK(find(c, "run.sh")->mtime.tv_sec == kPast);
  }

  TEST_CASE("two scans and streams of one tree give the same tar, byte for byte") {
    TempDir dir;
    populate(dir);
    const BuildContext a = scanned(options_for(dir));
    const BuildContext b = scanned(options_for(dir));
    const std::string tar_a = stream_all(a, 65536);
    const std::string tar_b = stream_all(b, 7);  // odd, tiny reads split everything
    CHECK(tar_a == tar_b);
    CHECK(tar_a.size() == tar_size(a));
    CHECK(tar_a.size() % 512 == 0);
    CHECK(content_hash(a, {}) == content_hash(b, {}));
  }

  TEST_CASE("tar headers carry no owner: uid and gid 0, empty user and group names") {
    TempDir dir;
    populate(dir);
    const std::string tar = stream_all(scanned(options_for(dir)), 4096);
    REQUIRE(tar.size() >= 512);
    CHECK(tar.substr(0, 14) == std::string(".dockerignore\0", 14));
    CHECK(tar.substr(108, 8) == std::string("0000000\0", 8));
    CHECK(tar.substr(116, 8) == std::string("0000000\0", 8));
    CHECK(tar.substr(265, 64) == std::string(64, '\0'));
    CHECK(tar.substr(257, 8) == std::string("ustar\0"
                                            "00",
                                            8));
  }

  TEST_CASE("GNU tar lists the stream with modes, real mtimes, 0/0 owners and links") {
    TempDir dir;
    populate(dir);
    fs::create_symlink("src/main.c", dir / "link");
    set_mtime(dir / "link", kPast);
    set_mtime(dir / "src", kPast);
    TempDir scratch;
    const fs::path tar = scratch / "ctx.tar";
    std::ofstream(tar, std::ios::binary) << stream_all(scanned(options_for(dir)), 1000);
    const std::string listing =
        run("TZ=UTC tar --numeric-owner --full-time -tvf '" + tar.string() + "'", scratch);
    // Each line: mode, owner/group, size, date, time, name.
    auto fields = [&listing](std::string_view name) {
      std::istringstream lines(listing);
      for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::vector<std::string> w;
        for (std::string word; words >> word;) w.push_back(word);
        if (w.size() >= 6 && w[5] == name) return w;
      }
      return std::vector<std::string>{};
    };
    CHECK(fields("run.sh") ==
          std::vector<std::string>{"-rwxr-xr-x", "0/0", "18", "2023-11-14", "22:13:20", "run.sh"});
    CHECK(fields("src/util/helpers.c") == std::vector<std::string>{"-rw-------", "0/0", "14",
                                                                   "2023-11-14", "22:13:20",
                                                                   "src/util/helpers.c"});
    CHECK(fields("src/")[0] == "drwxr-xr-x");
    CHECK(fields("link") == std::vector<std::string>{"lrwxrwxrwx", "0/0", "0", "2023-11-14",
                                                     "22:13:20", "link", "->", "src/main.c"});
    CHECK(listing.find("debug.log") == std::string::npos);
  }

  TEST_CASE("touching mtimes keeps the hash but changes the tar, which keeps real mtimes") {
    TempDir dir;
    populate(dir);
    const BuildContext before = scanned(options_for(dir));
    set_mtime(dir / "src/main.c", kPast + 3600);
    const BuildContext after = scanned(options_for(dir));
    CHECK(content_hash(before, {}) == content_hash(after, {}));
    CHECK(stream_all(before, 4096) != stream_all(after, 4096));
  }

  TEST_CASE("a mode change changes the hash") {
    TempDir dir;
    populate(dir);
    const std::string before = hash_of(options_for(dir));
    REQUIRE(::chmod((dir / "src/main.c").c_str(), 0755) == 0);
    CHECK(hash_of(options_for(dir)) != before);
  }

  TEST_CASE("one changed byte of an included file or of the Dockerfile changes the hash") {
    TempDir dir;
    populate(dir);
    const std::string before = hash_of(options_for(dir));
    write(dir / "src/main.c", "int main(void) { return 1; }\n");
    const std::string changed = hash_of(options_for(dir));
    CHECK(changed != before);
    write(dir / "Dockerfile", "FROM scratch\nCOPY . /x\n");
    CHECK(hash_of(options_for(dir)) != changed);
  }

  TEST_CASE("changing, adding or removing an ignored file keeps the hash") {
    TempDir dir;
    populate(dir);
    const std::string before = hash_of(options_for(dir));
    write(dir / "debug.log", "other noise\n");
    write(dir / "new.log", "x");
    CHECK(hash_of(options_for(dir)) == before);
    fs::remove(dir / "debug.log");
    CHECK(hash_of(options_for(dir)) == before);
  }

  TEST_CASE("build args, target, platform, base images and the Dockerfile path change the hash") {
    TempDir dir;
    populate(dir);
    write(dir / "Dockerfile.alt", "FROM scratch\nCOPY . /\n");
    const ContextOptions options = options_for(dir);
    const BuildContext c = scanned(options);
    HashInputs base;
    base.build_args = {{"A", "1"}, {"B", "2"}};
    base.base_image_ids = {"sha256:aaa"};
    const std::string h = content_hash(c, base);
    CHECK(h.size() == 64);
    CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(tag_for(h) == h.substr(0, 12));

    HashInputs v = base;
    v.build_args["A"] = "2";
    CHECK(content_hash(c, v) != h);
    v = base;
    v.build_args["C"] = "";
    CHECK(content_hash(c, v) != h);
    v = base;
    v.target = "test";
    CHECK(content_hash(c, v) != h);
    v = base;
    v.platform = "linux/arm64";
    CHECK(content_hash(c, v) != h);
    v = base;
    v.base_image_ids = {"sha256:bbb"};
    CHECK(content_hash(c, v) != h);

    ContextOptions alt = options;
    alt.dockerfile = "Dockerfile.alt";
    CHECK(content_hash(scanned(alt), base) != h);
  }

  TEST_CASE("the Dockerfile and .dockerignore are sent even when ignored") {
    TempDir dir;
    write(dir / "Dockerfile", "FROM scratch\n");
    write(dir / ".dockerignore", "*\n");
    write(dir / "other.txt", "x");
    CHECK(paths_of(scanned(options_for(dir))) ==
          std::vector<std::string>{".dockerignore", "Dockerfile"});

    TempDir nested;
    write(nested / "build/Dockerfile", "FROM scratch\n");
    write(nested / "build/notes.txt", "x");
    write(nested / ".dockerignore", "build\n.dockerignore\n");
    ContextOptions options = options_for(nested);
    options.dockerfile = "./build//Dockerfile";
    const BuildContext c = scanned(options);
    CHECK(c.dockerfile == "build/Dockerfile");
    CHECK(paths_of(c) == std::vector<std::string>{".dockerignore", "build", "build/Dockerfile"});
  }

  TEST_CASE("an exception inside an excluded directory sends the file with its parents") {
    TempDir dir;
    write(dir / "Dockerfile", "FROM scratch\n");
    write(dir / ".dockerignore", "vendor\n!vendor/keep/*.txt\nnode_modules\n");
    write(dir / "vendor/drop.txt", "x");
    write(dir / "vendor/keep/a.txt", "a");
    write(dir / "vendor/keep/b.bin", "b");
    write(dir / "node_modules/big/index.js", "x");
    const BuildContext c = scanned(options_for(dir));
    CHECK(paths_of(c) == std::vector<std::string>{".dockerignore", "Dockerfile", "vendor",
                                                  "vendor/keep", "vendor/keep/a.txt"});
    CHECK(c.stats.dirs_skipped == 1);  // node_modules: nothing can be re-included below it
  }

  TEST_CASE("symlinks are kept as links, never followed") {
    TempDir dir;
    populate(dir);
    fs::create_symlink("src/main.c", dir / "to-file");
    fs::create_symlink("src", dir / "to-dir");
    fs::create_symlink("../main.c", dir / "src/util/up");
    fs::create_symlink("missing", dir / "dangling");
    const BuildContext c = scanned(options_for(dir));
    REQUIRE(find(c, "to-dir") != nullptr);
    CHECK(find(c, "to-dir")->type == ContextEntry::kSymlink);
    CHECK(find(c, "to-dir")->link_target == "src");
    CHECK(find(c, "to-dir/main.c") == nullptr);
    CHECK(find(c, "to-file")->link_target == "src/main.c");
    CHECK(find(c, "src/util/up")->link_target == "../main.c");
    CHECK(find(c, "dangling")->type == ContextEntry::kSymlink);

    const std::string h = content_hash(c, {});
    fs::remove(dir / "to-file");
    fs::create_symlink("run.sh", dir / "to-file");
    CHECK(content_hash(scanned(options_for(dir)), {}) != h);
  }

  TEST_CASE("a symlink leading out of the context fails naming it") {
    for (const char* target : {"../../outside", "/etc/passwd", "sub/../../../x"}) {
      CAPTURE(target);
      TempDir dir;
      populate(dir);
      fs::create_symlink(target, dir / "src/escape");
      auto c = scan_context(options_for(dir));
      REQUIRE_FALSE(c.has_value());
      CHECK(c.error().code() == Code::kInvalidArgument);
      CHECK(c.error().message().find((dir / "src/escape").string()) != std::string::npos);
      CHECK(c.error().message().find(target) != std::string::npos);
    }
    TempDir ignored;
    populate(ignored);
    fs::create_symlink("/etc/passwd", ignored / "escape.log");  // ignored: never sent
    CHECK(scan_context(options_for(ignored)).has_value());
  }

  TEST_CASE("hard links are sent as regular files") {
    TempDir dir;
    populate(dir);
    fs::create_hard_link(dir / "run.sh", dir / "run2.sh");
    const BuildContext c = scanned(options_for(dir));
    CHECK(find(c, "run2.sh")->type == ContextEntry::kFile);
    CHECK(find(c, "run2.sh")->digest == find(c, "run.sh")->digest);
    TempDir scratch;
    std::ofstream(scratch / "c.tar", std::ios::binary) << stream_all(c, 512);
    run("mkdir '" + (scratch / "x").string() + "' && tar -xf '" + (scratch / "c.tar").string() +
            "' -C '" + (scratch / "x").string() + "'",
        scratch);
    CHECK(slurp(scratch / "x/run2.sh") == "#!/bin/sh\necho hi\n");
  }

  TEST_CASE("paths over 100 and 255 bytes and long link targets round-trip through GNU tar") {
    TempDir dir;
    write(dir / "Dockerfile", "FROM scratch\n");
    const std::string seg(60, 's');
    const std::string mid = seg + "1/" + seg + "2";                                // 123 bytes
    const std::string deep = mid + "/" + seg + "3/" + seg + "4/" + seg + "5.txt";  // 313 bytes
    write(dir / mid / "f.txt", "middle\n");
    write(dir / deep, "deep\n", 0640);
    fs::create_symlink(deep, dir / "long-link");
    const BuildContext c = scanned(options_for(dir));
    REQUIRE(find(c, deep) != nullptr);
    const std::string tar = stream_all(c, 3000);
    CHECK(tar.size() == tar_size(c));

    TempDir scratch;
    std::ofstream(scratch / "c.tar", std::ios::binary) << tar;
    const std::string listing = run("tar -tf '" + (scratch / "c.tar").string() + "'", scratch);
    CHECK(listing.find(deep + "\n") != std::string::npos);
    CHECK(listing.find(mid + "/f.txt\n") != std::string::npos);
    run("mkdir '" + (scratch / "x").string() + "' && tar -xf '" + (scratch / "c.tar").string() +
            "' -C '" + (scratch / "x").string() + "'",
        scratch);
    CHECK(slurp(scratch / "x" / deep) == "deep\n");
    CHECK(slurp(scratch / "x" / mid / "f.txt") == "middle\n");
    CHECK(fs::read_symlink(scratch / "x/long-link").string() == deep);
    CHECK((fs::status(scratch / "x" / deep).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
  }

  TEST_CASE("a file changed between scan and streaming fails naming it, before its last piece") {
    TempDir dir;
    populate(dir);
    const BuildContext c = scanned(options_for(dir));
    write(dir / "src/main.c", "int main(void) { return 7; }\n");  // same size
    ContextTarStream stream(c);
    std::string out;
    std::vector<char> buf(65536);
    Result<std::size_t> n = std::size_t{0};
    while ((n = stream.read(buf.data(), buf.size())) && *n > 0) out.append(buf.data(), *n);
    REQUIRE_FALSE(n.has_value());
    CHECK(n.error().code() == Code::kFailedPrecondition);
    CHECK(n.error().message().find((dir / "src/main.c").string()) != std::string::npos);
    CHECK(out.find("return 7") == std::string::npos);
    CHECK_FALSE(stream.read(buf.data(), buf.size()).has_value());  // the error sticks

    write(dir / "src/main.c", "longer now: int main(void) { return 7; }\n");
    ContextTarStream grown(c);
    while ((n = grown.read(buf.data(), 100)) && *n > 0) {
    }
    REQUIRE_FALSE(n.has_value());
    CHECK(n.error().message().find("src/main.c") != std::string::npos);
  }

  TEST_CASE("a context over the size limit fails early naming its 5 largest files") {
    TempDir dir;
    write(dir / "Dockerfile", "FROM scratch\n");
    const char* names[] = {"a", "b", "c", "d", "e", "f", "g"};
    for (std::size_t i = 0; i < 7; ++i) write(dir / names[i], std::string(1000 * (i + 1), 'x'));
    ContextOptions options = options_for(dir);
    options.size_limit = 10000;
    auto c = scan_context(options);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code() == Code::kInvalidArgument);
    const std::string m = c.error().message();
    INFO(m);
    CHECK(m.find(dir.path().string()) != std::string::npos);
    CHECK(m.find("largest: g (6.8 KiB), f (5.9 KiB), e (4.9 KiB), d (3.9 KiB), c (2.9 KiB)") !=
          std::string::npos);
    CHECK(m.find(" b (") == std::string::npos);
    options.size_limit = 1000000;
    CHECK(scan_context(options).has_value());
  }

  TEST_CASE("a warm digest cache makes a no-op rescan read no file") {
    TempDir dir;
    TempDir cache;
    populate(dir);
    ContextOptions options = options_for(dir);
    options.digest_cache_dir = cache / "state";
    options.racy_window = std::chrono::nanoseconds(0);
    const BuildContext cold = scanned(options);
    CHECK(cold.stats.files_read == 5);
    CHECK(cold.stats.cache_hits == 0);
    CHECK(fs::exists(DigestCache::file_for(options.digest_cache_dir, dir.path())));

    const BuildContext warm = scanned(options);
    CHECK(warm.stats.files_read == 0);
    CHECK(warm.stats.cache_hits == 5);
    CHECK(content_hash(warm, {}) == content_hash(cold, {}));
    CHECK(stream_all(warm, 4096) == stream_all(cold, 4096));

    write(dir / "src/main.c", "int main(void) { return 2; }\n");
    const BuildContext one = scanned(options);
    CHECK(one.stats.files_read == 1);
    CHECK(one.stats.cache_hits == 4);
    CHECK(content_hash(one, {}) != content_hash(cold, {}));
  }

  TEST_CASE("a cached digest spares reading its file: an unreadable one still hashes") {
    // Making a file unreadable changes its ctime, so this needs a second user who cannot read a
    // file that root cached.
    if (::geteuid() != 0) return;
    TempDir dir;
    TempDir cache;
    populate(dir);  // src/util/helpers.c is 0600, root's
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod(cache.path().c_str(), 0755) == 0);
    ContextOptions options = options_for(dir);
    options.digest_cache_dir = cache.path();
    options.racy_window = std::chrono::nanoseconds(0);
    const std::string h = content_hash(scanned(options), {});
    const fs::path file = DigestCache::file_for(cache.path(), dir.path());
    REQUIRE(::chmod(file.c_str(), 0644) == 0);
    CHECK(as_unprivileged([&] {
      auto c = scan_context(options);
      return c.has_value() && c->stats.files_read == 0 && content_hash(*c, {}) == h;
    }));
    ContextOptions uncached = options_for(dir);
    CHECK(as_unprivileged([&] {
      auto c = scan_context(uncached);
      return !c.has_value() && c.error().code() == Code::kPermissionDenied;
    }));
  }

  TEST_CASE("a file changed within the racy window is rehashed and not cached") {
    TempDir dir;
    TempDir cache;
    populate(dir);
    ContextOptions options = options_for(dir);
    options.digest_cache_dir = cache.path();
    options.racy_window = std::chrono::hours(24 * 365 * 100);  // everything is "recent"
    CHECK(scanned(options).stats.files_read == 5);
    const BuildContext again = scanned(options);
    CHECK(again.stats.files_read == 5);
    CHECK(again.stats.cache_hits == 0);
    CHECK(DigestCache::load(DigestCache::file_for(cache.path(), dir.path())).size() == 0);

    // The default window: files written just now are racy too.
    options.racy_window = std::chrono::seconds(2);
    write(dir / "fresh.txt", "new");
    ::utimensat(AT_FDCWD, (dir / "fresh.txt").c_str(), nullptr, 0);  // mtime: now
    scanned(options);
    CHECK(scanned(options).stats.files_read >= 1);
  }

  TEST_CASE("a corrupt digest cache file is ignored and replaced") {
    TempDir dir;
    TempDir cache;
    populate(dir);
    ContextOptions options = options_for(dir);
    options.digest_cache_dir = cache.path();
    options.racy_window = std::chrono::nanoseconds(0);
    const fs::path file = DigestCache::file_for(cache.path(), dir.path());
    std::ofstream(file, std::ios::binary) << "oddddigs1 but then garbage";
    CHECK(scanned(options).stats.files_read == 5);
    CHECK(DigestCache::load(file).size() == 5);
    CHECK(scanned(options).stats.files_read == 0);
  }

  TEST_CASE("a digest cache round-trips through its file") {
    TempDir cache;
    DigestCache c;
    FileStamp s;
    s.dev = 1;
    s.ino = 2;
    s.size = 3;
    s.mtime_sec = -4;
    s.mtime_nsec = 5;
    s.ctime_sec = 6;
    s.ctime_nsec = 999999999;
    Sha256Digest d{};
    d[0] = 0xAB;
    d[31] = 0xCD;
    c.put(s, d);
    REQUIRE(c.save(cache / "sub/x.digests").ok());
    const DigestCache back = DigestCache::load(cache / "sub/x.digests");
    REQUIRE(back.find(s).has_value());
    CHECK(*back.find(s) == d);
    s.ctime_nsec = 0;
    CHECK_FALSE(back.find(s).has_value());
  }

  TEST_CASE("bad input fails with a clear error naming the path") {
    TempDir dir;
    ContextOptions missing;
    missing.context_dir = dir / "nope";
    auto a = scan_context(missing);
    REQUIRE_FALSE(a.has_value());
    CHECK(a.error().code() == Code::kNotFound);
    CHECK(a.error().message().find((dir / "nope").string()) != std::string::npos);

    write(dir / "file", "x");
    auto b = scan_context(options_for(dir));
    REQUIRE_FALSE(b.has_value());
    CHECK(b.error().code() == Code::kNotFound);
    CHECK(b.error().message().find((dir / "Dockerfile").string()) != std::string::npos);

    ContextOptions not_dir;
    not_dir.context_dir = dir / "file";
    CHECK(scan_context(not_dir).error().code() == Code::kInvalidArgument);

    ContextOptions outside = options_for(dir);
    outside.dockerfile = "../Dockerfile";
    CHECK(scan_context(outside).error().code() == Code::kInvalidArgument);

    write(dir / "Dockerfile", "FROM scratch\n");
    write(dir / ".dockerignore", "ok\n[unterminated\n");
    auto c = scan_context(options_for(dir));
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code() == Code::kInvalidArgument);
    CHECK(c.error().message().find(".dockerignore line 2") != std::string::npos);
    CHECK(c.error().message().find(dir.path().string()) != std::string::npos);

    write(dir / ".dockerignore", "");
    REQUIRE(::mkfifo((dir / "pipe").c_str(), 0644) == 0);
    auto d = scan_context(options_for(dir));
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().message().find((dir / "pipe").string()) != std::string::npos);
    write(dir / ".dockerignore", "pipe\n");
    CHECK(scan_context(options_for(dir)).has_value());
  }

  TEST_CASE("an unreadable file fails with permission_denied naming it") {
    TempDir dir;
    populate(dir);
    REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    REQUIRE(::chmod((dir / "src/util/helpers.c").c_str(), 0644) == 0);
    write(dir / "secret.txt", "x", 0000);
    const std::string shown = (dir / "secret.txt").string();
    CHECK(as_unprivileged([&] {
      auto c = scan_context(options_for(dir));
      return !c.has_value() && c.error().code() == Code::kPermissionDenied &&
             c.error().message().find(shown) != std::string::npos;
    }));
    write(dir / ".dockerignore", "secret.txt\n");  // an ignored file is never opened
    CHECK(as_unprivileged([&] { return scan_context(options_for(dir)).has_value(); }));

    fs::create_directories(dir / "locked/inside");
    REQUIRE(::chmod((dir / "locked").c_str(), 0000) == 0);
    const std::string locked = (dir / "locked").string();
    CHECK(as_unprivileged([&] {
      auto c = scan_context(options_for(dir));
      return !c.has_value() && c.error().code() == Code::kPermissionDenied &&
             c.error().message().find(locked) != std::string::npos;
    }));
    write(dir / ".dockerignore", "secret.txt\nlocked\n!locked/inside/keep\n");
    CHECK(as_unprivileged([&] { return scan_context(options_for(dir)).has_value(); }));
  }
}

}  // namespace
}  // namespace odd::engine
