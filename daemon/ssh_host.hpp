#pragma once
// SshHost: a RemoteHost over a sshx::Pool for one host of the daemon config, and, for a host
// with `docker: true`, a DockerEngine whose connections are SSH channels running
// `docker system dial-stdio` on that host (DESIGN §2: the same engine code over another stream).
// Owns its pool and engine; the pool's sessions outlive nothing that uses them. Use from the
// daemon's I/O strand.

#include <boost/asio/any_io_executor.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "daemon/config.hpp"
#include "daemon/remote_host.hpp"
#include "daemon/upload_journal.hpp"
#include "sshx/pool.hpp"

namespace odd::daemon {

// Sessions opened to one host at most; each carries max_sessions / 2 channels at once, so a
// kill channel always fits under the server's MaxSessions.
inline constexpr int kMaxConnectionsPerHost = 4;

// The pool options for `config`: how many channels a session carries, connect limits.
sshx::PoolOptions pool_options_for(const HostConfig& config);
// The session options for host `name`; `passphrase` is the value of its passphrase_secret.
sshx::SessionOptions session_options_for(const std::string& name, const HostConfig& config,
                                         std::optional<std::string> passphrase);

// The RemoteHost for host `name`. `blocking` runs the image builder's file work;
// `state_dir` keeps its build digests under build-digests/<name>; `passphrase` as above;
// `uploads` is the host's journal of uploads (state_dir/uploads/<name>), the same for every
// instance of the host during the daemon's life.
std::unique_ptr<RemoteHost> make_ssh_host(asio::any_io_executor executor,
                                          asio::any_io_executor blocking, const std::string& name,
                                          const HostConfig& config,
                                          std::optional<std::string> passphrase,
                                          const std::filesystem::path& state_dir,
                                          std::shared_ptr<UploadJournal> uploads);

}  // namespace odd::daemon
