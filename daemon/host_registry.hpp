#pragma once
// HostRegistry: the daemon's remote hosts (DESIGN §5, §10), one RemoteHost per `hosts:` entry of
// its config, made by a factory (SSH in oddd, fakes in tests). configure() replaces the set on
// SIGHUP: a host whose config changed gets a new RemoteHost, while steps still holding the old
// one (shared_ptr) finish on it. Owned by the daemon; used on its I/O strand only.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/remote_host.hpp"

namespace odd::daemon {

using RemoteHostFactory =
    std::function<std::unique_ptr<RemoteHost>(const std::string& name, const HostConfig& config)>;

class HostRegistry {
 public:
  explicit HostRegistry(RemoteHostFactory factory) : factory_(std::move(factory)) {}

  // What configure() did, by host name, each list sorted.
  struct Changes {
    std::vector<std::string> added;
    std::vector<std::string> replaced;  // its config changed
    std::vector<std::string> removed;
  };
  // Makes the registry hold exactly `hosts`: new names are created with the factory, names whose
  // config changed are created again, names no longer there are dropped. Unchanged hosts keep
  // their RemoteHost (and its connections).
  Changes configure(const std::map<std::string, HostConfig, std::less<>>& hosts);

  // The host of that name, or nullptr.
  std::shared_ptr<RemoteHost> find(std::string_view name) const;
  // Its config, or nullptr; valid until the next configure().
  const HostConfig* config(std::string_view name) const;
  // Every host's name, sorted.
  std::vector<std::string> names() const;

 private:
  struct Entry {
    HostConfig config;
    std::shared_ptr<RemoteHost> host;
  };
  RemoteHostFactory factory_;
  std::map<std::string, Entry, std::less<>> hosts_;
};

}  // namespace odd::daemon
