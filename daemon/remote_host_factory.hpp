#pragma once
// make_remote_host: the RemoteHostFactory oddd gives its HostRegistry (daemon/host_registry.hpp).
// Its definition is the one place that decides how oddd reaches a remote host; it is linked into
// oddd alone, so swapping the implementation touches nothing else.

#include <memory>
#include <string>

#include "daemon/config.hpp"
#include "daemon/remote_host.hpp"

namespace odd::daemon {

// A RemoteHost for host `name` of the config. Never null; it connects lazily, on first use.
std::unique_ptr<RemoteHost> make_remote_host(const std::string& name, const HostConfig& config);

}  // namespace odd::daemon
