#include "engine/endpoint.hpp"

#include <charconv>
#include <cstdlib>

namespace odd::engine {

std::string Endpoint::to_string() const {
  if (kind == Kind::kUnix) return "unix://" + path;
  bool ipv6 = host.find(':') != std::string::npos;
  return "tcp://" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

Status bad_host(std::string_view value, std::string_view why) {
  return invalid_argument("docker host \"" + std::string(value) + "\": " + std::string(why) +
                          " (expected unix:///path/to/docker.sock or tcp://host:port)");
}

}  // namespace

Result<Endpoint> parse_endpoint(std::string_view value) {
  Endpoint ep;
  std::string_view rest = value;
  if (rest.starts_with("unix://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("tcp://") || rest.starts_with("http://")) {
    rest.remove_prefix(rest.find("://") + 3);
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return bad_host(value, "no port");
    std::string_view port_text = rest.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return bad_host(value, "invalid port \"" + std::string(port_text) + "\"");
    }
    ep.kind = Endpoint::Kind::kTcp;
    ep.host = std::string(rest.substr(0, colon));
    if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']') {
      ep.host = ep.host.substr(1, ep.host.size() - 2);
    }
    ep.port = static_cast<std::uint16_t>(port);
    return ep;
  } else if (!rest.starts_with("/")) {
    return bad_host(value, "unsupported scheme");
  }
  if (!rest.starts_with("/")) return bad_host(value, "socket path must be absolute");
  ep.kind = Endpoint::Kind::kUnix;
  ep.path = std::string(rest);
  return ep;
}

std::string docker_host_from_env() {
  const char* env = std::getenv("DOCKER_HOST");
  if (env != nullptr && *env != '\0') return env;
  return std::string(kDefaultDockerHost);
}

}  // namespace odd::engine
