#include "daemon/host_registry.hpp"

namespace odd::daemon {

HostRegistry::Changes HostRegistry::configure(
    const std::map<std::string, HostConfig, std::less<>>& hosts) {
  Changes changes;
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    if (hosts.find(it->first) == hosts.end()) {
      changes.removed.push_back(it->first);
      it = hosts_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, config] : hosts) {
    auto it = hosts_.find(name);
    if (it != hosts_.end() && it->second.config == config) continue;
    Entry entry{config, std::shared_ptr<RemoteHost>(factory_(name, config))};
    if (it == hosts_.end()) {
      changes.added.push_back(name);
      hosts_.emplace(name, std::move(entry));
    } else {
      changes.replaced.push_back(name);
      it->second = std::move(entry);
    }
  }
  return changes;
}

std::shared_ptr<RemoteHost> HostRegistry::find(std::string_view name) const {
  auto it = hosts_.find(name);
  return it == hosts_.end() ? nullptr : it->second.host;
}

const HostConfig* HostRegistry::config(std::string_view name) const {
  auto it = hosts_.find(name);
  return it == hosts_.end() ? nullptr : &it->second.config;
}

std::vector<std::string> HostRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : hosts_) out.push_back(name);
  return out;
}

}  // namespace odd::daemon
