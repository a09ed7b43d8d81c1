#pragma once
// The transport of a remote host's dockerd (DESIGN §2): an engine::Dialer whose connections are
// SSH channels running `docker system dial-stdio` on the host, each on a leased session of the
// host's pool, so engine/'s HTTP client and everything above it work unchanged. Use from the
// pool's strand.

#include <memory>

#include "engine/connection.hpp"
#include "sshx/pool.hpp"

namespace odd::daemon {

// Each connection holds its lease until it is closed; dial() fails with the pool's error (the
// host named) or with why the channel could not start.
std::unique_ptr<engine::Dialer> make_ssh_docker_dialer(std::shared_ptr<sshx::Pool> pool);

}  // namespace odd::daemon
