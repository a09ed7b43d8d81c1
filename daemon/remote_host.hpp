#pragma once
// RemoteHost: what the scheduler sees of one SSH host from the daemon config (DESIGN §5 steps
// exec, upload, download). SshRemoteHost implements it over a sshx::Pool; tests use FakeRemote.
// It knows commands and files, never runs or jobs. Used from the daemon's I/O strand; every call
// honours cancellation of the awaiting coroutine (a cancelled exec kills its remote process group
// before returning).

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "daemon/container_engine.hpp"

namespace odd::daemon {

struct RemoteCommand {
  std::string command;  // a shell command line
  std::map<std::string, std::string> env;
};

struct RemoteExit {
  int exit_code = 0;
  std::string signal;  // "TERM", "KILL", ... or ""
};

struct RemoteTransfer {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};

// The state of a host for GET /v1/health and `oddc hosts`.
struct RemoteHostHealth {
  std::string state;  // "idle" (nothing connected yet), "connected", "failing"
  int sessions = 0;
  int in_use = 0;
  std::string error;  // the last failure while "failing"
};

class RemoteHost {
 public:
  virtual ~RemoteHost() = default;

  // Runs `command` to its exit; output pieces go to `on_output` as they arrive. Errors name the
  // host: unavailable (connect or transport failure: retryable), permission_denied (host key or
  // auth), cancelled.
  virtual asio::awaitable<Result<RemoteExit>> exec(
      const RemoteCommand& command,
      std::function<void(OutputStream, std::string_view)> on_output) = 0;

  // Uploads the local file or tree `source` to `dest` on the host (see sshx::upload).
  virtual asio::awaitable<Result<RemoteTransfer>> upload(const std::filesystem::path& source,
                                                         const std::string& dest,
                                                         std::optional<unsigned> mode) = 0;
  // Writes `content` to `dest` on the host with `mode`, never touching the local disk.
  virtual asio::awaitable<Status> upload_content(std::string_view content, const std::string& dest,
                                                 unsigned mode) = 0;
  // Downloads the remote file or tree `source` into `local_root`/`dest`, confined to local_root.
  virtual asio::awaitable<Result<RemoteTransfer>> download(const std::string& source,
                                                           const std::filesystem::path& local_root,
                                                           const std::string& dest) = 0;

  // Removes the temporary files that uploads cut off by a lost connection or by an earlier
  // daemon's death left on the host, when there are any; reports failures in the log.
  virtual asio::awaitable<void> remove_left_behind() { co_return; }

  virtual RemoteHostHealth health() const = 0;

  // The host's own dockerd reached over SSH (config `docker: true`), or nullptr.
  virtual ContainerEngine* container_engine() { return nullptr; }
};

}  // namespace odd::daemon
