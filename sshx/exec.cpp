#include "sshx/exec.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

#include "sshx/channel_handle.hpp"

namespace odd::sshx {

namespace {

using Clock = std::chrono::steady_clock;
constexpr Millis kOpenTimeout{30'000};
constexpr Millis kKillTimeout{10'000};
constexpr Millis kCloseTimeout{10'000};
constexpr std::size_t kReadBuffer = 64 * 1024;

Deadline after(Millis timeout) {
  if (timeout.count() <= 0) return Deadline::max();
  return Clock::now() + timeout;
}

int signal_number(std::string_view name) {
  static constexpr std::pair<std::string_view, int> kSignals[] = {
      {"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"ABRT", 6},
      {"FPE", 8},   {"KILL", 9},  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12},
      {"PIPE", 13}, {"ALRM", 14}, {"TERM", 15},
  };
  for (const auto& [n, number] : kSignals) {
    if (n == name) return number;
  }
  return 0;
}

// One running remote command: its channel, the process group its wrapper reported, and the
// output it has produced so far.
struct Running {
  ChannelHandle channel;
  ExecSink sink;
  std::string first_line;  // the wrapper's "$$\n", until complete
  bool have_pgid = false;
  std::string pgid;
  bool eof = false;

  void on_stdout(std::string_view bytes) {
    if (!have_pgid) {
      const std::size_t newline = bytes.find('\n');
      first_line.append(bytes.substr(0, newline));
      if (newline == std::string_view::npos) return;
      have_pgid = true;
      pgid = first_line;
      bytes.remove_prefix(newline + 1);
    }
    if (!bytes.empty() && sink) sink(ExecStream::kStdout, bytes);
  }
};

// Reads both streams until EOF, `deadline`, or cancellation (all resumable: the session stays
// usable). unavailable when the session broke.
asio::awaitable<Status> drain(Running& run, Deadline deadline) {
  Session& session = run.channel.session();
  LIBSSH2_CHANNEL* channel = run.channel.get();
  std::array<char, kReadBuffer> buffer;
  while (!run.eof) {
    const std::uint64_t seen = session.generation();
    const long out =
        static_cast<long>(libssh2_channel_read_ex(channel, 0, buffer.data(), buffer.size()));
    if (out > 0) run.on_stdout(std::string_view(buffer.data(), static_cast<std::size_t>(out)));
    const long err = static_cast<long>(
        libssh2_channel_read_ex(channel, SSH_EXTENDED_DATA_STDERR, buffer.data(), buffer.size()));
    if (err > 0 && run.sink) {
      run.sink(ExecStream::kStderr, std::string_view(buffer.data(), static_cast<std::size_t>(err)));
    }
    session.after_call(seen);
    for (long rc : {out, err}) {
      if (rc < 0 && rc != LIBSSH2_ERROR_EAGAIN) {
        Status broken = session.last_error("reading command output");
        session.mark_broken(broken);
        co_return broken;
      }
    }
    if (out > 0 || err > 0) continue;
    if (libssh2_channel_eof(channel) != 0) {
      run.eof = true;
      break;
    }
    if (Status parked = co_await session.park(seen, deadline, true); !parked.ok()) {
      co_return parked;
    }
  }
  co_return ok_status();
}

asio::awaitable<Status> signal_group(const std::shared_ptr<Session>& session,
                                     const std::string& pgid, std::string_view signal) {
  auto killed = co_await exec_capture(
      session, "kill -s " + std::string(signal) + " -- -" + pgid + " 2>/dev/null || true",
      kKillTimeout);
  co_return killed ? ok_status() : killed.error();
}

// Stops the remote process group (TERM, `grace`, KILL) and drains what is left. Runs on a
// coroutine no cancellation reaches.
asio::awaitable<void> stop_group(Running& run, Millis grace) {
  std::shared_ptr<Session> session = run.channel.session_ptr();
  if (!run.have_pgid) {
    co_await drain(run, Clock::now() + std::min(grace, Millis(1000)));
  }
  if (run.have_pgid && !run.eof && session->usable()) {
    co_await signal_group(session, run.pgid, "TERM");
    co_await drain(run, Clock::now() + grace);
    if (!run.eof && session->usable()) {
      co_await signal_group(session, run.pgid, "KILL");
      co_await drain(run, Clock::now() + kKillTimeout);
    }
  }
}

std::string wrapper(const ExecRequest& request, const std::vector<std::string>& exported) {
  std::string script = "echo $$; ";
  for (const std::string& key : exported) {
    script += "export " + key + "=" + shell_quote(request.env.at(key)) + "; ";
  }
  // The command runs in /bin/sh: in the user's shell itself when that is /bin/sh (sshd starts it
  // under its base name, "sh"), which saves starting a second shell; through exec otherwise.
  script += "[ \"$0\" = sh ] || exec /bin/sh -c " + shell_quote(request.command) + "\n";
  script += request.command;
  return script;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string shell_quote(std::string_view text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted.push_back(c);
    }
  }
  quoted += "'";
  return quoted;
}

asio::awaitable<Result<ExecResult>> exec(std::shared_ptr<Session> session, ExecRequest request,
                                         ExecSink sink) {
  for (const auto& [key, value] : request.env) {
    if (!valid_env_name(key)) {
      co_return invalid_argument("environment variable name \"" + key + "\" is not valid");
    }
  }
  auto opened = co_await ChannelHandle::open(session, after(kOpenTimeout));
  if (!opened) co_return opened.error();
  Running run;
  run.channel = std::move(*opened);
  run.sink = std::move(sink);
  LIBSSH2_CHANNEL* channel = run.channel.get();
  const Deadline setup_deadline = after(kOpenTimeout);

  std::vector<std::string> exported;
  for (const auto& variable : request.env) {
    const std::string& key = variable.first;
    const std::string& value = variable.second;
    auto set = co_await session->call(
        [&] {
          return libssh2_channel_setenv_ex(channel, key.data(), static_cast<unsigned>(key.size()),
                                           value.data(), static_cast<unsigned>(value.size()));
        },
        setup_deadline);
    if (!set) co_return set.error();
    if (*set != 0) exported.push_back(key);
  }
  const std::string command = wrapper(request, exported);
  auto started = co_await session->call(
      [&] {
        return libssh2_channel_process_startup(channel, "exec", 4, command.data(),
                                               static_cast<unsigned>(command.size()));
      },
      setup_deadline);
  if (!started) co_return started.error();
  if (*started != 0) co_return session->last_error("starting the command");

  std::size_t written = 0;
  while (written < request.stdin_data.size()) {
    auto wrote = co_await session->call(
        [&] {
          return libssh2_channel_write_ex(channel, 0, request.stdin_data.data() + written,
                                          request.stdin_data.size() - written);
        },
        setup_deadline);
    if (!wrote) co_return wrote.error();
    if (*wrote < 0) co_return session->last_error("writing the command's input");
    written += static_cast<std::size_t>(*wrote);
  }
  auto sent_eof =
      co_await session->call([&] { return libssh2_channel_send_eof(channel); }, setup_deadline);
  if (!sent_eof) co_return sent_eof.error();

  Status drained = co_await drain(run, after(request.timeout));
  if (!drained.ok()) {
    if (drained.code() != Code::kDeadlineExceeded && drained.code() != Code::kCancelled) {
      co_return drained;
    }
    co_await asio::this_coro::reset_cancellation_state();
    co_await asio::co_spawn(
        session->get_executor(), stop_group(run, request.kill_grace),
        asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
    if (drained.code() == Code::kDeadlineExceeded) {
      co_return deadline_exceeded(session->describe() + ": the command exceeded its timeout of " +
                                  std::to_string(request.timeout.count()) + " ms and was killed");
    }
    co_return cancelled(session->describe() + ": the command was cancelled and killed");
  }

  if (Status closed = co_await run.channel.close(after(kCloseTimeout)); !closed.ok()) {
    co_return closed;
  }
  ExecResult result;
  result.exit_code = libssh2_channel_get_exit_status(channel);
  char* signal = nullptr;
  std::size_t signal_length = 0;
  libssh2_channel_get_exit_signal(channel, &signal, &signal_length, nullptr, nullptr, nullptr,
                                  nullptr);
  if (signal != nullptr) {
    result.exit_signal.assign(signal, signal_length);
    libssh2_free(session->raw(), signal);
    if (const int number = signal_number(result.exit_signal); number > 0) {
      result.exit_code = 128 + number;
    }
  }
  co_return result;
}

asio::awaitable<Result<std::string>> exec_capture(std::shared_ptr<Session> session,
                                                  std::string command, Millis timeout) {
  std::string out;
  std::string err;
  ExecRequest request;
  request.command = command;
  request.timeout = timeout;
  auto ran =
      co_await exec(session, std::move(request), [&](ExecStream stream, std::string_view bytes) {
        std::string& into = stream == ExecStream::kStdout ? out : err;
        if (into.size() < (1u << 20)) into.append(bytes);
      });
  if (!ran) co_return ran.error();
  if (ran->exit_code != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    co_return failed_precondition(session->describe() + ": `" + command + "` failed (exit " +
                                  std::to_string(ran->exit_code) + ")" +
                                  (err.empty() ? "" : ": " + err));
  }
  co_return out;
}

}  // namespace odd::sshx
