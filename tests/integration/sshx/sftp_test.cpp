// SFTP transfers against the test sshd: trees with modes both ways (compared with OpenSSH's
// own sftp), large files, content uploads, uploads that never leave a partial file, and
// downloads that cannot leave their destination.

#include "sshx/sftp.hpp"

#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "sshx/exec.hpp"
#include "sshx/session.hpp"
#include "tests/integration/sshx/sshd_fixture.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

namespace fs = std::filesystem;
using sshx::Session;

asio::awaitable<std::shared_ptr<Session>> connect_ok() {
  auto session = co_await Session::connect(co_await asio::this_coro::executor, sshd_options());
  ODD_REQUIRE_OK(session);
  co_return *session;
}

asio::awaitable<std::string> remote(std::shared_ptr<Session> session, const std::string& command) {
  auto out = co_await sshx::exec_capture(session, command, Millis(60'000));
  ODD_REQUIRE_OK(out);
  co_return *out;
}

int run(const std::string& command) { return std::system(command.c_str()); }

// The pid of the sshd process serving `session`.
asio::awaitable<std::string> server_pid(std::shared_ptr<Session> session) {
  std::string pid = co_await remote(session, "echo $PPID");
  pid.resize(pid.find('\n'));
  co_return pid;
}

// Kills the sshd processes of the connection whose server is `pid` while a transfer runs, then
// waits for the transfer's `outcome`: unavailable.
asio::awaitable<void> cut_connection(const std::string& pid,
                                     const std::optional<Result<sshx::TransferStats>>& outcome) {
  REQUIRE_FALSE(outcome.has_value());
  signal_processes(connection_processes(pid), "KILL");
  for (int i = 0; i < 1000 && !outcome; ++i) co_await sleep_for(Millis(20));
  REQUIRE(outcome.has_value());
  REQUIRE_FALSE(outcome->has_value());
  ODD_CHECK_CODE(outcome->error(), Code::kUnavailable);
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// A tree with nested directories, an empty file, an executable and a private file.
void make_tree(const fs::path& root) {
  fs::create_directories(root / "a" / "b" / "c");
  fs::create_directories(root / "empty-dir");
  write_file(root / "top.txt", "top\n");
  write_file(root / "a" / "run.sh", "#!/bin/sh\necho hi\n");
  write_file(root / "a" / "b" / "secret", "s3cret");
  write_file(root / "a" / "b" / "c" / "empty", "");
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) % 251);
  write_file(root / "a" / "big.bin", big);
  fs::permissions(root / "a" / "run.sh", fs::perms(0755));
  fs::permissions(root / "a" / "b" / "secret", fs::perms(0600));
  fs::permissions(root / "a" / "b", fs::perms(0750));
}

std::string ssh_base() {
  const SshdFixture& s = sshd();
  return "-i " + (s.dir / "id_ed25519").string() +
         " -o UserKnownHostsFile=" + (s.dir / "known_hosts").string() +
         " -o StrictHostKeyChecking=yes -o BatchMode=yes";
}

TEST_CASE("a tree uploads and downloads with its contents and modes, as OpenSSH's sftp sees it") {
  TempDir local;
  make_tree(local.path() / "src");
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    auto sent = co_await sshx::upload(session, local.path() / "src", dir + "/tree", std::nullopt);
    ODD_REQUIRE_OK(sent);
    CHECK(sent->files == 5);
    auto got = co_await sshx::download(session, dir + "/tree", local.path() / "back", "copy");
    ODD_REQUIRE_OK(got);
    CHECK(got->files == 5);
    CHECK(got->bytes == sent->bytes);
    // Again in many small chunks.
    sshx::TransferOptions options;
    options.buffer_bytes = 4096;
    auto resent =
        co_await sshx::upload(session, local.path() / "src", dir + "/tree2", std::nullopt, options);
    ODD_REQUIRE_OK(resent);
    CHECK(resent->bytes == sent->bytes);
    auto again =
        co_await sshx::download(session, dir + "/tree2", local.path() / "back", "again", options);
    ODD_REQUIRE_OK(again);
    CHECK(again->bytes == sent->bytes);
    const std::string listing = co_await remote(session, "ls -A " + dir + "/tree/a");
    CHECK(listing.find("odd-tmp") == std::string::npos);
  }());
  const fs::path back = local.path() / "back" / "copy";
  CHECK(run("diff -r " + (local.path() / "src").string() + " " + back.string()) == 0);
  const fs::path again = local.path() / "back" / "again";
  CHECK(run("diff -r " + (local.path() / "src").string() + " " + again.string()) == 0);
  CHECK(mode_of(again / "a" / "run.sh") == 0755);
  CHECK(mode_of(again / "a" / "b" / "secret") == 0600);
  CHECK(mode_of(back / "a" / "run.sh") == 0755);
  CHECK(mode_of(back / "a" / "b" / "secret") == 0600);
  CHECK(mode_of(back / "a" / "b") == 0750);
  CHECK(fs::is_directory(back / "empty-dir"));

  const SshdFixture& s = sshd();
  const fs::path openssh = local.path() / "openssh";
  const std::string fetch = "sftp -q -r -P " + std::to_string(s.port) + " " + ssh_base() + " " +
                            s.user + "@" + s.address + ":" + dir + "/tree " + openssh.string() +
                            " >/dev/null";
  REQUIRE(run(fetch) == 0);
  CHECK(run("diff -r " + openssh.string() + " " + back.string()) == 0);
}

TEST_CASE("a 64 MB file crosses both ways byte for byte") {
  TempDir local;
  const fs::path file = local.path() / "big";
  REQUIRE(run("head -c 67108864 /dev/urandom > " + file.string()) == 0);
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    auto sent = co_await sshx::upload(session, file, dir + "/big", std::nullopt);
    ODD_REQUIRE_OK(sent);
    CHECK(sent->bytes == 67108864);
    auto got = co_await sshx::download(session, dir + "/big", local.path(), "back/big");
    ODD_REQUIRE_OK(got);
    CHECK(got->bytes == 67108864);
  }());
  CHECK(run("cmp -s " + file.string() + " " + (local.path() / "back" / "big").string()) == 0);
}

TEST_CASE("content uploads with its mode, replacing an existing file") {
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    Status first = co_await sshx::upload_content(session, "OLD=1\n", dir + "/odd/.env", 0644);
    ODD_REQUIRE_OK(first);
    Status second = co_await sshx::upload_content(session, "TOKEN=abc\n", dir + "/odd/.env");
    ODD_REQUIRE_OK(second);
    CHECK(co_await remote(session, "cat " + dir + "/odd/.env") == "TOKEN=abc\n");
    CHECK(co_await remote(session, "stat -c %a " + dir + "/odd/.env") == "600\n");
    CHECK(co_await remote(session, "ls -A " + dir + "/odd") == ".env\n");
  }());
}

TEST_CASE("an upload cancelled midway leaves no file at the target and no temporary file") {
  TempDir local;
  const fs::path file = local.path() / "big";
  REQUIRE(run("head -c 268435456 /dev/zero > " + file.string()) == 0);
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir);
    auto outcome =
        co_await within(Millis(300), sshx::upload(session, file, dir + "/big", std::nullopt));
    CHECK_FALSE(outcome.has_value());
    REQUIRE(session->usable());
  }());
}

TEST_CASE("a download cancelled midway leaves no file at the target and no temporary file") {
  TempDir local;
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir + " && truncate -s 1G " + dir + "/huge");
    auto outcome = co_await within(Millis(300),
                                   sshx::download(session, dir + "/huge", local.path(), "in/huge"));
    CHECK_FALSE(outcome.has_value());
    CHECK(fs::is_empty(local.path() / "in"));
  }());
}

TEST_CASE("an upload whose connection dies midway leaves nothing at the target name") {
  TempDir local;
  const fs::path file = local.path() / "huge";
  REQUIRE(run("truncate -s 1G " + file.string()) == 0);
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    auto watcher = co_await connect_ok();
    co_await remote(watcher, "mkdir -p " + dir);
    const std::string pid = co_await server_pid(session);
    std::optional<Result<sshx::TransferStats>> outcome;
    sshx::TransferOptions options;
    options.tag = "t3st-tag_1";
    // Named: the coroutine reads its captures through the closure, which must outlive it.
    auto send = [&]() -> asio::awaitable<void> {
      outcome = co_await sshx::upload(session, file, dir + "/huge", std::nullopt, options);
    };
    asio::co_spawn(co_await asio::this_coro::executor, send(), asio::detached);
    const std::string growing = "find " + dir + " -name '.huge.odd-tmp-*' -size +2M | wc -l";
    for (int i = 0; i < 500 && !outcome; ++i) {
      if (co_await remote(watcher, growing) != "0\n") break;
      co_await sleep_for(Millis(10));
    }
    co_await cut_connection(pid, outcome);
    CHECK(outcome->error().message().find("test-sshd (") != std::string::npos);
    // Only the hidden temporary file, named by the tag, is left; a later session removes it.
    CHECK(co_await remote(watcher, "ls " + dir) == "");
    CHECK(co_await remote(watcher, "ls -A " + dir) == ".huge.odd-tmp-t3st-tag_1\n");
    auto removed = co_await sshx::remove_temporaries(watcher, dir + "/huge", options.tag);
    ODD_REQUIRE_OK(removed);
    CHECK(*removed == 1);
    CHECK(co_await remote(watcher, "ls -A " + dir) == "");
    removed = co_await sshx::remove_temporaries(watcher, dir + "/huge", options.tag);
    ODD_REQUIRE_OK(removed);
    CHECK(*removed == 0);
  }());
}

TEST_CASE("remove_temporaries removes a tree upload's tagged temporaries and nothing else") {
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    const std::string setup =
        "set -e; mkdir -p " + dir + " && cd " + dir +
        " && mkdir -p tree/sub/deeper tree/.d.odd-tmp-T1 elsewhere && " +
        "touch tree/.a.odd-tmp-T1 tree/sub/deeper/.b.odd-tmp-T1 .tree.odd-tmp-T1 " +
        "tree/.c.odd-tmp-T2 tree/x.odd-tmp-T1 tree/.odd-tmp-T1 tree/.e.odd-tmp-T1x " +
        "elsewhere/.f.odd-tmp-T1 && ln -s ../elsewhere tree/link";
    co_await remote(session, setup);
    auto removed = co_await sshx::remove_temporaries(session, dir + "/tree", "T1");
    ODD_REQUIRE_OK(removed);
    CHECK(*removed == 3);
    CHECK(co_await remote(session, "cd " + dir + " && find . -mindepth 1 | LC_ALL=C sort") ==
          "./elsewhere\n./elsewhere/.f.odd-tmp-T1\n./tree\n./tree/.c.odd-tmp-T2\n"
          "./tree/.d.odd-tmp-T1\n./tree/.e.odd-tmp-T1x\n./tree/.odd-tmp-T1\n./tree/link\n"
          "./tree/sub\n./tree/sub/deeper\n./tree/x.odd-tmp-T1\n");

    auto missing = co_await sshx::remove_temporaries(session, dir + "/nothing-here", "T1");
    ODD_REQUIRE_OK(missing);
    CHECK(*missing == 0);
    const std::vector<std::string> bad_tags = {"", "../x", "a b", "tag/1"};
    for (const std::string& bad : bad_tags) {
      auto refused = co_await sshx::remove_temporaries(session, dir + "/tree", bad);
      REQUIRE_FALSE(refused.has_value());
      ODD_CHECK_CODE(refused.error(), Code::kInvalidArgument);
    }
    TempDir local;
    REQUIRE(run("echo hi > " + (local.path() / "f").string()) == 0);
    sshx::TransferOptions options;
    options.tag = "../../escape";
    auto upload =
        co_await sshx::upload(session, local.path() / "f", dir + "/f", std::nullopt, options);
    REQUIRE_FALSE(upload.has_value());
    ODD_CHECK_CODE(upload.error(), Code::kInvalidArgument);
    CHECK(upload.error().message().find("../../escape") != std::string::npos);
  }());
}

TEST_CASE("a download whose connection dies midway leaves no file behind, local or temporary") {
  TempDir local;
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir + " && truncate -s 1G " + dir + "/huge");
    const std::string pid = co_await server_pid(session);
    std::optional<Result<sshx::TransferStats>> outcome;
    auto fetch = [&]() -> asio::awaitable<void> {
      outcome = co_await sshx::download(session, dir + "/huge", local.path(), "in/huge");
    };
    asio::co_spawn(co_await asio::this_coro::executor, fetch(), asio::detached);
    const auto written = [&] {
      std::uintmax_t bytes = 0;
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(local.path() / "in", ec)) bytes += e.file_size();
      return bytes;
    };
    for (int i = 0; i < 500 && !outcome && written() < (2u << 20); ++i) {
      co_await sleep_for(Millis(10));
    }
    co_await cut_connection(pid, outcome);
    CHECK(outcome->error().message().find("connection lost") != std::string::npos);
  }());
  CHECK(fs::is_empty(local.path() / "in"));
}

TEST_CASE("a tree with a read-only directory uploads whole, the directory's mode set last") {
  TempDir local;
  const fs::path src = local.path() / "src";
  fs::create_directories(src / "ro" / "sub");
  write_file(src / "ro" / "f", "in a read-only dir\n");
  write_file(src / "ro" / "sub" / "g", "deeper\n");
  fs::permissions(src / "ro" / "sub", fs::perms(0555));
  fs::permissions(src / "ro", fs::perms(0500));
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    auto sent = co_await sshx::upload(session, src, dir + "/tree", std::nullopt);
    ODD_REQUIRE_OK(sent);
    CHECK(sent->files == 2);
    CHECK(co_await remote(session, "cd " + dir + "/tree && stat -c '%a %n' ro ro/sub && cat ro/f " +
                                       "ro/sub/g && ls -A ro ro/sub") ==
          "500 ro\n555 ro/sub\nin a read-only dir\ndeeper\nro:\nf\nsub\n\nro/sub:\ng\n");
  }());
  fs::permissions(src / "ro", fs::perms(0700));
  fs::permissions(src / "ro" / "sub", fs::perms(0700));
}

TEST_CASE(
    "a symlink deep in a tree refuses it before anything is made on the host; FIFOs are skipped") {
  TempDir local;
  const fs::path src = local.path() / "src";
  fs::create_directories(src / "a" / "b");
  write_file(src / "a" / "f", "first\n");
  write_file(src / "a" / "b" / "g", "second\n");
  fs::create_symlink("/etc/passwd", src / "a" / "b" / "z-link");
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir);
    auto sent = co_await sshx::upload(session, src, dir + "/tree", std::nullopt);
    REQUIRE_FALSE(sent.has_value());
    ODD_CHECK_CODE(sent.error(), Code::kInvalidArgument);
    CHECK(sent.error().message().find((src / "a" / "b" / "z-link").string() + " is a symlink") !=
          std::string::npos);
    CHECK(co_await remote(session, "ls -A " + dir) == "");

    // A FIFO in place of the symlink is skipped, and the rest of the tree goes.
    fs::remove(src / "a" / "b" / "z-link");
    REQUIRE(::mkfifo((src / "a" / "b" / "z-fifo").c_str(), 0644) == 0);
    auto resent = co_await sshx::upload(session, src, dir + "/tree", std::nullopt);
    ODD_REQUIRE_OK(resent);
    CHECK(resent->files == 2);
    CHECK(co_await remote(session, "cd " + dir + "/tree && ls -A a/b && cat a/f") == "g\nfirst\n");
  }());
}

TEST_CASE("a file uploaded onto a directory is refused and nothing lands inside it") {
  TempDir local;
  write_file(local.path() / "f", "data\n");
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir + "/d");
    auto sent = co_await sshx::upload(session, local.path() / "f", dir + "/d", std::nullopt);
    REQUIRE_FALSE(sent.has_value());
    ODD_CHECK_CODE(sent.error(), Code::kFailedPrecondition);
    CHECK(sent.error().message().find(dir + "/d is a directory") != std::string::npos);
    CHECK(co_await remote(session, "ls -A " + dir + " " + dir + "/d") ==
          dir + ":\nd\n\n" + dir + "/d:\n");
  }());
}

TEST_CASE("an upload over an existing file is atomic: the old content until the new is whole") {
  TempDir local;
  write_file(local.path() / "v2", "version 2\n");
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir + " && echo 'version 1' > " + dir + "/f");
    auto sent = co_await sshx::upload(session, local.path() / "v2", dir + "/f", 0640u);
    ODD_REQUIRE_OK(sent);
    CHECK(co_await remote(session, "cat " + dir + "/f; stat -c %a " + dir + "/f") ==
          "version 2\n640\n");
  }());
}

TEST_CASE("a download destination outside its root is refused") {
  TempDir local;
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir + " && echo x > " + dir + "/f");
    for (const std::string dest : {"../escape", "/tmp/escape", "a/../../escape"}) {
      auto got = co_await sshx::download(session, dir + "/f", local.path() / "root", dest);
      REQUIRE_FALSE(got.has_value());
      ODD_CHECK_CODE(got.error(), Code::kPermissionDenied);
      CHECK(got.error().message().find(dest) != std::string::npos);
    }
  }());
  CHECK_FALSE(fs::exists(local.path() / "escape"));
  CHECK_FALSE(fs::exists("/tmp/escape"));
}

TEST_CASE("remote symlinks are skipped and a local symlink is never written through") {
  TempDir local;
  const std::string dir = remote_scratch();
  fs::create_directories(local.path() / "root");
  fs::create_directories(local.path() / "outside");
  fs::create_directory_symlink(local.path() / "outside", local.path() / "root" / "link");
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    co_await remote(session, "mkdir -p " + dir + "/t && echo ok > " + dir + "/t/real && ln -s " +
                                 "/etc/passwd " + dir + "/t/passwd && ln -s / " + dir + "/t/root");
    auto got = co_await sshx::download(session, dir + "/t", local.path() / "root", "tree");
    ODD_REQUIRE_OK(got);
    CHECK(got->files == 1);
    auto through = co_await sshx::download(session, dir + "/t", local.path() / "root", "link/x");
    REQUIRE_FALSE(through.has_value());
    ODD_CHECK_CODE(through.error(), Code::kPermissionDenied);
  }());
  CHECK(read_file(local.path() / "root" / "tree" / "real") == "ok\n");
  CHECK_FALSE(fs::exists(local.path() / "root" / "tree" / "passwd"));
  CHECK_FALSE(fs::exists(local.path() / "root" / "tree" / "root"));
  CHECK(fs::is_empty(local.path() / "outside"));
}

TEST_CASE("missing paths are not_found, naming the path") {
  TempDir local;
  const std::string dir = remote_scratch();
  run_io([&]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    auto got = co_await sshx::download(session, dir + "/nothing", local.path(), "x");
    REQUIRE_FALSE(got.has_value());
    ODD_CHECK_CODE(got.error(), Code::kNotFound);
    CHECK(got.error().message().find(dir + "/nothing") != std::string::npos);
    auto sent = co_await sshx::upload(session, local.path() / "nothing", dir + "/x", std::nullopt);
    REQUIRE_FALSE(sent.has_value());
    ODD_CHECK_CODE(sent.error(), Code::kNotFound);
    CHECK(sent.error().message().find("nothing") != std::string::npos);
    CHECK(session->usable());
  }());
}

}  // namespace
}  // namespace odd::integration
