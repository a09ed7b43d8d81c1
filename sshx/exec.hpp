#pragma once
// Remote command execution over one Session (DESIGN §3): the command runs as
// `setsid -w sh -c 'echo $$; eval "$1"'` so its process group can be signalled over a second
// channel (libssh2 1.10 has no signal request and sshd signals nothing when a channel closes).
// stdout and stderr are drained together, so neither side can deadlock on a full window.
// Use from the session's strand.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "sshx/session.hpp"

namespace odd::sshx {

enum class ExecStream { kStdout, kStderr };

struct ExecRequest {
  std::string command;  // a shell command line, run by `sh -c` on the host
  // Set with the channel's env request where sshd accepts it (AcceptEnv), otherwise exported by
  // the wrapper before the command runs.
  std::map<std::string, std::string> env;
  Millis timeout{0};        // 0: none. Past it the process group gets TERM, then KILL.
  Millis kill_grace{5000};  // between TERM and KILL
  std::string stdin_data;   // written, then EOF
};

struct ExecResult {
  int exit_code = 0;        // 128 + signal number when killed by a signal, as sh reports it
  std::string exit_signal;  // "TERM", "KILL", ... when sshd reports one; "" otherwise
};

// Called with each piece of output in arrival order, per stream byte-exact (pieces may split
// lines); the wrapper's pid line is not passed on. Must not block.
using ExecSink = std::function<void(ExecStream, std::string_view)>;

// Runs `request` to its end. A non-zero exit is a value, not an error. Errors name the host:
// unavailable (the session broke, channel refused), deadline_exceeded (request.timeout passed;
// the process group was killed), cancelled (the awaiting coroutine was cancelled; the process
// group is killed before this returns, on a fresh coroutine that cancellation cannot reach).
asio::awaitable<Result<ExecResult>> exec(std::shared_ptr<Session> session, ExecRequest request,
                                         ExecSink sink);

// Runs `command` and returns its stdout when it exits 0; failed_precondition with its stderr
// otherwise. For short helper commands (mv -f, mkdir -p, kill).
asio::awaitable<Result<std::string>> exec_capture(std::shared_ptr<Session> session,
                                                  std::string command, Millis timeout);

// `text` quoted for sh: 'it'\''s'.
std::string shell_quote(std::string_view text);

}  // namespace odd::sshx
