#include "sshx/exec.hpp"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include "sshx/channel_stream.hpp"
#include "sshx/pool.hpp"
#include "sshx/session.hpp"
#include "tests/integration/sshx/sshd_fixture.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

using sshx::ExecRequest;
using sshx::ExecStream;
using sshx::Session;
using tcp = asio::ip::tcp;

struct Captured {
  std::string out;
  std::string err;
  sshx::ExecSink sink() {
    return [this](ExecStream stream, std::string_view bytes) {
      (stream == ExecStream::kStdout ? out : err).append(bytes);
    };
  }
};

asio::awaitable<std::shared_ptr<Session>> connect_ok(
    sshx::SessionOptions options = sshd_options()) {
  auto session = co_await Session::connect(co_await asio::this_coro::executor, options);
  ODD_REQUIRE_OK(session);
  co_return *session;
}

ExecRequest command(std::string text, Millis timeout = Millis(0)) {
  ExecRequest request;
  request.command = std::move(text);
  request.timeout = timeout;
  return request;
}

// Whether the process whose pid is in `pid_file` still runs (a zombie waiting for init counts
// as gone).
asio::awaitable<bool> process_alive(std::shared_ptr<Session> session, const std::string& pid_file) {
  auto alive = co_await sshx::exec_capture(
      session,
      "p=$(cat " + pid_file +
          "); grep -qs '^State:[^Z]*$' /proc/$p/status && echo alive || "
          "echo gone",
      Millis(10'000));
  ODD_REQUIRE_OK(alive);
  co_return *alive == "alive\n";
}

TEST_CASE("exec returns the command's exit code and output per stream") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    Captured c;
    auto ran = co_await sshx::exec(session, command("echo out; echo err >&2; exit 3"), c.sink());
    ODD_REQUIRE_OK(ran);
    CHECK(ran->exit_code == 3);
    CHECK(ran->exit_signal.empty());
    CHECK(c.out == "out\n");
    CHECK(c.err == "err\n");
    auto ok = co_await sshx::exec(session, command("true"), nullptr);
    ODD_REQUIRE_OK(ok);
    CHECK(ok->exit_code == 0);
  }());
}

TEST_CASE("20 MB on stdout and 20 MB on stderr at once are drained without a deadlock") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    std::size_t out = 0, err = 0;
    bool out_clean = true, err_clean = true;
    auto ran =
        co_await sshx::exec(session,
                            command("head -c 20000000 /dev/zero | tr '\\0' a & "
                                    "head -c 20000000 /dev/zero | tr '\\0' b >&2; wait",
                                    Millis(120'000)),
                            [&](ExecStream stream, std::string_view bytes) {
                              const char expected = stream == ExecStream::kStdout ? 'a' : 'b';
                              bool& clean = stream == ExecStream::kStdout ? out_clean : err_clean;
                              if (bytes.find_first_not_of(expected) != std::string_view::npos)
                                clean = false;
                              (stream == ExecStream::kStdout ? out : err) += bytes.size();
                            });
    ODD_REQUIRE_OK(ran);
    CHECK(ran->exit_code == 0);
    CHECK(out == 20'000'000);
    CHECK(err == 20'000'000);
    CHECK(out_clean);
    CHECK(err_clean);
  }());
}

TEST_CASE("a command killed by a signal reports the signal") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    auto ran = co_await sshx::exec(session, command("kill -TERM $$; sleep 5"), nullptr);
    ODD_REQUIRE_OK(ran);
    CHECK(ran->exit_signal == "TERM");
    CHECK(ran->exit_code == 128 + 15);
  }());
}

TEST_CASE(
    "a command runs in /bin/sh, with its exit code, signal and kill, whatever the login shell") {
  // oddtest's login shell is /bin/sh (the command runs in it), oddtest-bash's is bash (the
  // command runs in a /bin/sh it execs).
  for (const char* user : {"oddtest", "oddtest-bash"}) {
    CAPTURE(user);
    run_io([user]() -> asio::awaitable<void> {
      sshx::SessionOptions options = sshd_options();
      options.user = user;
      auto session = co_await connect_ok(options);
      Captured c;
      ExecRequest request = command(
          "printf '%s %s ' \"${BASH_VERSION:-no-bash}\" \"$ODD_VIA\"; readlink /proc/$$/exe; "
          "exit 4");
      request.env["ODD_VIA"] = "env-request";
      auto ran = co_await sshx::exec(session, std::move(request), c.sink());
      ODD_REQUIRE_OK(ran);
      CHECK(ran->exit_code == 4);
      const std::string sh = std::filesystem::canonical("/bin/sh").string();
      CHECK(c.out == "no-bash env-request " + sh + "\n");
      CHECK(c.err == "");

      auto signalled = co_await sshx::exec(session, command("kill -TERM $$; sleep 5"), nullptr);
      ODD_REQUIRE_OK(signalled);
      CHECK(signalled->exit_signal == "TERM");

      Captured child;
      auto timed_out = co_await sshx::exec(
          session, command("sleep 60 & echo $!; wait", Millis(1500)), child.sink());
      REQUIRE_FALSE(timed_out.has_value());
      ODD_CHECK_CODE(timed_out.error(), Code::kDeadlineExceeded);
      REQUIRE_FALSE(child.out.empty());
      const std::string pid = child.out.substr(0, child.out.find('\n'));
      auto state = co_await sshx::exec_capture(
          session, "grep -qs '^State:[^Z]*$' /proc/" + pid + "/status && echo alive || echo gone",
          Millis(10'000));
      ODD_REQUIRE_OK(state);
      CHECK(*state == "gone\n");
    }());
  }
}

TEST_CASE("a command past its timeout is killed with its process group") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    const std::string dir = remote_scratch();
    const std::string pid_file = dir + "/child.pid";
    auto ran = co_await sshx::exec(
        session,
        command("mkdir -p " + dir + "; sleep 60 & echo $! > " + pid_file + "; wait", Millis(1500)),
        nullptr);
    REQUIRE_FALSE(ran.has_value());
    ODD_CHECK_CODE(ran.error(), Code::kDeadlineExceeded);
    CHECK(ran.error().message().find("test-sshd") != std::string::npos);
    CHECK(session->usable());
    CHECK_FALSE(co_await process_alive(session, pid_file));
  }());
}

TEST_CASE("cancelling an exec kills the remote command and keeps the session usable") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    const std::string dir = remote_scratch();
    const std::string pid_file = dir + "/child.pid";
    auto outcome = co_await within(
        Millis(1500),
        sshx::exec(session,
                   command("mkdir -p " + dir + "; sleep 60 & echo $! > " + pid_file + "; wait"),
                   nullptr));
    CHECK_FALSE(outcome.has_value());
    REQUIRE(session->usable());
    CHECK_FALSE(co_await process_alive(session, pid_file));
    auto again = co_await sshx::exec(session, command("true"), nullptr);
    ODD_REQUIRE_OK(again);
    CHECK(again->exit_code == 0);
  }());
}

TEST_CASE("environment reaches the command whether sshd accepts it or not") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    ExecRequest request = command("printf '%s|%s' \"$ODD_ACCEPTED\" \"$NOT_ACCEPTED\"");
    request.env = {{"ODD_ACCEPTED", "one 'quoted'"}, {"NOT_ACCEPTED", "two $HOME"}};
    Captured c;
    auto ran = co_await sshx::exec(session, request, c.sink());
    ODD_REQUIRE_OK(ran);
    CHECK(c.out == "one 'quoted'|two $HOME");
    request.env = {{"BAD NAME", "x"}};
    auto bad = co_await sshx::exec(session, request, nullptr);
    REQUIRE_FALSE(bad.has_value());
    ODD_CHECK_CODE(bad.error(), Code::kInvalidArgument);
  }());
}

TEST_CASE("stdin data reaches the command, then EOF") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    ExecRequest request = command("wc -c");
    request.stdin_data = std::string(100'000, 'x');
    Captured c;
    auto ran = co_await sshx::exec(session, request, c.sink());
    ODD_REQUIRE_OK(ran);
    CHECK(c.out.find("100000") != std::string::npos);
  }());
}

TEST_CASE("many execs in flight on one session all complete with their own output") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    std::vector<std::string> outputs(8);
    std::vector<int> codes(8, -1);
    auto one = [&](int i) -> asio::awaitable<void> {
      Captured c;
      auto ran =
          co_await sshx::exec(session,
                              command("i=0; while [ $i -lt 200 ]; do echo " + std::to_string(i) +
                                      "; i=$((i+1)); done; exit " + std::to_string(i)),
                              c.sink());
      if (ran) codes[static_cast<std::size_t>(i)] = ran->exit_code;
      outputs[static_cast<std::size_t>(i)] = c.out;
    };
    using namespace asio::experimental::awaitable_operators;
    co_await (one(0) && one(1) && one(2) && one(3) && one(4) && one(5) && one(6) && one(7));
    for (int i = 0; i < 8; ++i) {
      CHECK(codes[static_cast<std::size_t>(i)] == i);
      std::string expected;
      for (int k = 0; k < 200; ++k) expected += std::to_string(i) + "\n";
      CHECK(outputs[static_cast<std::size_t>(i)] == expected);
    }
    CHECK(session->open_channels() == 0);
  }());
}

TEST_CASE("a channel stream carries bytes both ways like a socket") {
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok();
    auto stream = co_await sshx::ChannelStream::open_exec(
        session, "cat", std::chrono::steady_clock::now() + std::chrono::seconds(10));
    ODD_REQUIRE_OK(stream);
    const std::string sent(300'000, 'z');
    auto [wec, wn] = co_await asio::async_write(*stream, asio::buffer(sent),
                                                asio::as_tuple(asio::use_awaitable));
    CHECK_FALSE(wec);
    CHECK(wn == sent.size());
    std::string got(sent.size(), '\0');
    auto [rec, rn] =
        co_await asio::async_read(*stream, asio::buffer(got), asio::as_tuple(asio::use_awaitable));
    CHECK_FALSE(rec);
    CHECK(rn == sent.size());
    CHECK(got == sent);
    stream->shutdown_send();
    char byte = 0;
    auto [eec, en] = co_await stream->async_read_some(asio::buffer(&byte, 1),
                                                      asio::as_tuple(asio::use_awaitable));
    CHECK(eec == asio::error::eof);
    CHECK(en == 0);
  }());
}

TEST_CASE("a host key that differs from known_hosts is refused, naming type and fingerprint") {
  run_io([]() -> asio::awaitable<void> {
    auto options = sshd_options();
    options.known_hosts = sshd().dir / "known_hosts_other";
    auto session = co_await Session::connect(co_await asio::this_coro::executor, options);
    REQUIRE_FALSE(session.has_value());
    ODD_CHECK_CODE(session.error(), Code::kPermissionDenied);
    const std::string m = session.error().message();
    CHECK(m.find("does not match") != std::string::npos);
    CHECK(m.find("ssh-ed25519 SHA256:") != std::string::npos);
    CHECK(m.find("test-sshd (") != std::string::npos);
  }());
}

TEST_CASE("an unknown host is refused") {
  run_io([]() -> asio::awaitable<void> {
    TempDir tmp;
    write_file(tmp.path() / "known_hosts",
               "[192.0.2.1]:22 ssh-ed25519 "
               "AAAAC3NzaC1lZDI1NTE5AAAAIGIlf2LmK++9KAyL8lI4gk5KhaT8ZqW/MrqvOjUEDeNE\n");
    auto options = sshd_options();
    options.known_hosts = tmp.path() / "known_hosts";
    auto session = co_await Session::connect(co_await asio::this_coro::executor, options);
    REQUIRE_FALSE(session.has_value());
    ODD_CHECK_CODE(session.error(), Code::kPermissionDenied);
    CHECK(session.error().message().find("is not in") != std::string::npos);
    options.known_hosts = tmp.path() / "missing";
    auto missing = co_await Session::connect(co_await asio::this_coro::executor, options);
    REQUIRE_FALSE(missing.has_value());
    ODD_CHECK_CODE(missing.error(), Code::kInvalidArgument);
  }());
}

TEST_CASE("hashed known_hosts entries match") {
  run_io([]() -> asio::awaitable<void> {
    auto options = sshd_options();
    options.known_hosts = sshd().dir / "known_hosts_hashed";
    auto session = co_await Session::connect(co_await asio::this_coro::executor, options);
    ODD_CHECK_OK(session);
  }());
}

TEST_CASE("ecdsa keys and passphrase-protected keys authenticate") {
  run_io([]() -> asio::awaitable<void> {
    auto ecdsa =
        co_await Session::connect(co_await asio::this_coro::executor, sshd_options("id_ecdsa"));
    ODD_CHECK_OK(ecdsa);
    auto options = sshd_options("id_ed25519_pass");
    options.passphrase = read_file(sshd().dir / "passphrase");
    while (!options.passphrase->empty() && options.passphrase->back() == '\n') {
      options.passphrase->pop_back();
    }
    auto with = co_await Session::connect(co_await asio::this_coro::executor, options);
    ODD_CHECK_OK(with);
    options.passphrase = "wrong";
    auto wrong = co_await Session::connect(co_await asio::this_coro::executor, options);
    REQUIRE_FALSE(wrong.has_value());
    ODD_CHECK_CODE(wrong.error(), Code::kPermissionDenied);
    CHECK(wrong.error().message().find("id_ed25519_pass") != std::string::npos);
  }());
}

TEST_CASE("a key the server does not accept, an RSA key and a missing key are refused clearly") {
  run_io([]() -> asio::awaitable<void> {
    auto ex = co_await asio::this_coro::executor;
    auto wrong = co_await Session::connect(ex, sshd_options("wrong_ed25519"));
    REQUIRE_FALSE(wrong.has_value());
    ODD_CHECK_CODE(wrong.error(), Code::kPermissionDenied);
    CHECK(wrong.error().message().find("accepted no key") != std::string::npos);
    auto rsa = co_await Session::connect(ex, sshd_options("id_rsa"));
    REQUIRE_FALSE(rsa.has_value());
    ODD_CHECK_CODE(rsa.error(), Code::kInvalidArgument);
    CHECK(rsa.error().message().find("RSA") != std::string::npos);
    auto missing = co_await Session::connect(ex, sshd_options("no_such_key"));
    REQUIRE_FALSE(missing.has_value());
    ODD_CHECK_CODE(missing.error(), Code::kPermissionDenied);
    CHECK(missing.error().message().find("no_such_key") != std::string::npos);
  }());
}

// A real ssh-agent on a private socket, holding `keys` (file names in the sshd's dir), with
// SSH_AUTH_SOCK pointing at it until the agent is stopped at the end of the scope.
class TestAgent {
 public:
  explicit TestAgent(const std::vector<std::string>& keys) {
    char tmpl[] = "/tmp/odd-agent.XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    socket_ = (dir_ / "agent.sock").string();
    const std::string env = (dir_ / "env").string();
    REQUIRE(std::system(("ssh-agent -s -a " + socket_ + " > " + env).c_str()) == 0);
    const std::string printed = read_file(env);
    const std::size_t at = printed.find("SSH_AGENT_PID=");
    REQUIRE(at != std::string::npos);
    pid_ = std::atoi(printed.c_str() + at + 14);
    REQUIRE(pid_ > 0);
    for (const auto& key : keys) {
      const std::string add = "SSH_AUTH_SOCK=" + socket_ + " ssh-add -q " +
                              (sshd().dir / key).string() + " </dev/null 2>/dev/null";
      REQUIRE_MESSAGE(std::system(add.c_str()) == 0, "ssh-add " << key);
    }
    ::setenv("SSH_AUTH_SOCK", socket_.c_str(), 1);
  }
  ~TestAgent() {
    ::unsetenv("SSH_AUTH_SOCK");
    // The agent unlinks its socket as it exits; removing the dir meanwhile could fail midway.
    std::error_code ec;
    if (pid_ > 0 && ::kill(pid_, SIGTERM) == 0) {
      for (int i = 0; i < 200 && std::filesystem::exists(socket_, ec); ++i) ::usleep(10'000);
    }
    std::filesystem::remove_all(dir_, ec);
  }
  TestAgent(const TestAgent&) = delete;
  TestAgent& operator=(const TestAgent&) = delete;

  const std::string& socket() const { return socket_; }

 private:
  std::filesystem::path dir_;
  std::string socket_;
  pid_t pid_ = 0;
};

sshx::SessionOptions agent_options() {
  auto options = sshd_options();
  options.identity.reset();
  options.agent = true;
  return options;
}

TEST_CASE("ssh-agent authentication tries the agent's keys until the server accepts one") {
  TestAgent agent({"wrong_ed25519", "id_ed25519"});
  run_io([]() -> asio::awaitable<void> {
    auto session = co_await connect_ok(agent_options());
    auto out = co_await sshx::exec_capture(session, "echo via-agent", Millis(10'000));
    ODD_REQUIRE_OK(out);
    CHECK(*out == "via-agent\n");
  }());
}

TEST_CASE("an agent whose keys the server refuses, an empty agent and no agent fail clearly") {
  auto refused = [](const std::string& expected) {
    run_io([](std::string want) -> asio::awaitable<void> {
      auto session = co_await Session::connect(co_await asio::this_coro::executor, agent_options());
      REQUIRE_FALSE(session.has_value());
      ODD_CHECK_CODE(session.error(), Code::kPermissionDenied);
      CHECK_MESSAGE(session.error().message().find(want) != std::string::npos,
                    session.error().message());
      CHECK(session.error().message().find(sshd().address) != std::string::npos);
    }(expected));
  };
  {
    TestAgent agent({"wrong_ed25519"});
    refused("the server accepted none of the 1 keys of ssh-agent (" + agent.socket() + ")");
  }
  {
    TestAgent agent({});
    refused("the server accepted none of the 0 keys of ssh-agent (" + agent.socket() + ")");
  }
  ::setenv("SSH_AUTH_SOCK", "/tmp/odd-no-such-agent.sock", 1);
  refused("ssh-agent unreachable at /tmp/odd-no-such-agent.sock");
  ::unsetenv("SSH_AUTH_SOCK");
  refused("ssh-agent unreachable at (SSH_AUTH_SOCK is not set)");
}

TEST_CASE("a port where nothing listens is unavailable, naming the host") {
  run_io([]() -> asio::awaitable<void> {
    auto options = sshd_options();
    options.address = "127.0.0.1";
    options.port = 1;
    auto session = co_await Session::connect(co_await asio::this_coro::executor, options);
    REQUIRE_FALSE(session.has_value());
    ODD_CHECK_CODE(session.error(), Code::kUnavailable);
    CHECK(session.error().message().find("127.0.0.1:1") != std::string::npos);
  }());
}

// A listener on loopback that answers each connection with `reply` (if any) and then closes it,
// or, with `hold`, keeps it open without a word.
asio::awaitable<void> not_ssh_server(std::shared_ptr<tcp::acceptor> acceptor, std::string reply,
                                     bool hold) {
  std::vector<tcp::socket> held;
  for (;;) {
    auto [ec, peer] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    if (hold) {
      held.push_back(std::move(peer));
      continue;
    }
    co_await asio::async_write(peer, asio::buffer(reply), asio::as_tuple(asio::use_awaitable));
  }
}

TEST_CASE("a peer that sends no SSH banner is named as probably not an SSH server") {
  run_io([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    struct Case {
      std::string reply;
      bool hold;
      Code code;
      std::string says;
    };
    const std::vector<Case> cases{
        {"HTTP/1.1 400 Bad Request\r\n\r\n", false, Code::kUnavailable, "sent no SSH banner;"},
        {"", true, Code::kDeadlineExceeded, "sent no SSH banner in time"}};
    for (const Case& c : cases) {
      CAPTURE(c.says);
      auto acceptor = std::make_shared<tcp::acceptor>(
          executor, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      asio::co_spawn(executor, not_ssh_server(acceptor, c.reply, c.hold), asio::detached);
      auto options = sshd_options();
      options.address = "127.0.0.1";
      options.port = acceptor->local_endpoint().port();
      options.connect_timeout = Millis(500);
      auto session = co_await Session::connect(executor, options);
      acceptor->close();
      REQUIRE_FALSE(session.has_value());
      ODD_CHECK_CODE(session.error(), c.code);
      const std::string message = session.error().message();
      CHECK(message.find("127.0.0.1:" + std::to_string(options.port) +
                         "): SSH handshake: the server sent no SSH banner") != std::string::npos);
      CHECK(message.find(c.says) != std::string::npos);
      CHECK(message.find("is an SSH server listening on port " + std::to_string(options.port) +
                         "?") != std::string::npos);
    }
  }());
}

TEST_CASE("a pool shares sessions up to its channel limit and opens no more than max_sessions") {
  run_io([]() -> asio::awaitable<void> {
    sshx::PoolOptions options;
    options.max_sessions = 2;
    options.channels_per_session = 2;
    auto pool = sshx::Pool::create(co_await asio::this_coro::executor, sshd_options(), options);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::vector<sshx::Lease> leases;
    for (int i = 0; i < 4; ++i) {
      auto lease = co_await pool->acquire(deadline);
      ODD_REQUIRE_OK(lease);
      leases.push_back(std::move(*lease));
    }
    CHECK(pool->state().sessions == 2);
    CHECK(pool->state().leases == 4);
    CHECK(leases[0].session() == leases[1].session());
    CHECK(leases[0].session() != leases[2].session());
    auto busy = co_await pool->acquire(std::chrono::steady_clock::now() + Millis(300));
    REQUIRE_FALSE(busy.has_value());
    ODD_CHECK_CODE(busy.error(), Code::kDeadlineExceeded);
    leases[0].session()->close();
    leases.erase(leases.begin());
    leases.erase(leases.begin());
    auto replaced = co_await pool->acquire(deadline);
    ODD_REQUIRE_OK(replaced);
    CHECK(replaced->session()->usable());
    auto ran = co_await sshx::exec(replaced->session(), command("true"), nullptr);
    ODD_CHECK_OK(ran);
  }());
}

TEST_CASE("a pool whose host refuses connections reports failing with the error") {
  run_io([]() -> asio::awaitable<void> {
    auto options = sshd_options();
    options.port = 1;
    sshx::PoolOptions pool_options;
    pool_options.connect_attempts = 2;
    pool_options.connect_backoff = Millis(50);
    auto pool = sshx::Pool::create(co_await asio::this_coro::executor, options, pool_options);
    auto lease =
        co_await pool->acquire(std::chrono::steady_clock::now() + std::chrono::seconds(10));
    REQUIRE_FALSE(lease.has_value());
    ODD_CHECK_CODE(lease.error(), Code::kUnavailable);
    CHECK(pool->state().kind == sshx::PoolState::Kind::kFailing);
    CHECK(pool->state().error.find(":1)") != std::string::npos);
  }());
}

// Whether any of `pids` still runs (a zombie counts as gone).
bool any_running(const std::vector<std::string>& pids) {
  for (const std::string& pid : pids) {
    std::ifstream status("/proc/" + pid + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("State:", 0) == 0 && line.find('Z') == std::string::npos) return true;
    }
  }
  return false;
}

// Runs `echo $PPID; sleep 30` on a session of `pool` and calls `fault` with the sshd processes of
// that connection once they are known; returns how the exec ended.
asio::awaitable<Result<sshx::ExecResult>> exec_with_fault(
    std::shared_ptr<Session> session, std::function<void(const std::vector<std::string>&)> fault) {
  std::string first;
  bool fired = false;
  co_return co_await sshx::exec(session, command("echo $PPID; sleep 30"),
                                [&](ExecStream stream, std::string_view bytes) {
                                  if (stream != ExecStream::kStdout || fired) return;
                                  first.append(bytes);
                                  if (first.find('\n') == std::string::npos) return;
                                  fired = true;
                                  fault(connection_processes(first.substr(0, first.find('\n'))));
                                });
}

TEST_CASE("sshd killed mid-exec gives a clear error, and the pool's next lease works") {
  run_io([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto pool = sshx::Pool::create(executor, sshd_options(), sshx::PoolOptions{});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    {
      auto lease = co_await pool->acquire(deadline);
      ODD_REQUIRE_OK(lease);
      auto ran = co_await within(
          Millis(20'000),
          exec_with_fault(lease->session(), [](const std::vector<std::string>& pids) {
            signal_processes(pids, "KILL");
          }));
      REQUIRE(ran.has_value());
      REQUIRE_FALSE(ran->has_value());
      ODD_CHECK_CODE(ran->error(), Code::kUnavailable);
      CHECK(ran->error().message().find("test-sshd (") != std::string::npos);
      CHECK_FALSE(lease->session()->usable());
    }
    auto next = co_await pool->acquire(deadline);
    ODD_REQUIRE_OK(next);
    auto again = co_await sshx::exec(next->session(), command("echo back"), nullptr);
    ODD_REQUIRE_OK(again);
    CHECK(again->exit_code == 0);
    CHECK(pool->state().sessions == 1);
  }());
}

TEST_CASE("an idle pooled session whose connection was killed is replaced, not handed out") {
  run_io([]() -> asio::awaitable<void> {
    auto executor = co_await asio::this_coro::executor;
    auto pool = sshx::Pool::create(executor, sshd_options(), sshx::PoolOptions{});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::shared_ptr<Session> first;
    {
      auto lease = co_await pool->acquire(deadline);
      ODD_REQUIRE_OK(lease);
      first = lease->session();
      auto pid = co_await sshx::exec_capture(first, "echo $PPID", Millis(10'000));
      ODD_REQUIRE_OK(pid);
      const std::vector<std::string> pids = connection_processes(pid->substr(0, pid->find('\n')));
      signal_processes(pids, "KILL");
      for (int i = 0; i < 200 && any_running(pids); ++i) co_await sleep_for(Millis(10));
      co_await sleep_for(Millis(50));  // the kernel's FIN or RST reaches our socket
    }
    CHECK(first->usable());  // nothing has read from it since
    auto next = co_await pool->acquire(deadline);
    ODD_REQUIRE_OK(next);
    CHECK(next->session() != first);
    CHECK_FALSE(first->usable());
    CHECK(first->failure().message().find("connection lost") != std::string::npos);
    auto ran = co_await sshx::exec(next->session(), command("echo back"), nullptr);
    ODD_REQUIRE_OK(ran);
    CHECK(ran->exit_code == 0);
  }());
}

TEST_CASE("a host that stops answering is found dead by keepalives within interval x count") {
  std::vector<std::string> stopped;
  run_io([&]() -> asio::awaitable<void> {
    auto options = sshd_options();
    options.keepalive_interval = Millis(1000);
    options.keepalive_count = 2;
    auto session = co_await Session::connect(co_await asio::this_coro::executor, options);
    ODD_REQUIRE_OK(session);
    const auto started = std::chrono::steady_clock::now();
    auto ran = co_await within(Millis(20'000),
                               exec_with_fault(*session, [&](const std::vector<std::string>& pids) {
                                 stopped = pids;
                                 signal_processes(pids, "STOP");
                               }));
    const auto took = std::chrono::steady_clock::now() - started;
    REQUIRE(ran.has_value());
    REQUIRE_FALSE(ran->has_value());
    ODD_CHECK_CODE(ran->error(), Code::kUnavailable);
    CHECK(ran->error().message().find("stopped answering") != std::string::npos);
    CHECK(took < std::chrono::seconds(15));
    CHECK_FALSE((*session)->usable());
  }());
  signal_processes(stopped, "KILL");
}

}  // namespace
}  // namespace odd::integration
