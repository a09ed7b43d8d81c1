#pragma once
// Where dockerd listens: parsed from DOCKER_HOST-style strings. Values only, no I/O.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::engine {

struct Endpoint {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string path;  // kUnix: the socket path
  std::string host;  // kTcp
  std::uint16_t port = 0;

  // "unix:///var/run/docker.sock" or "tcp://10.0.0.5:2375": how errors name the daemon.
  std::string to_string() const;
};

inline constexpr std::string_view kDefaultDockerHost = "unix:///var/run/docker.sock";

// Accepts "unix:///abs/path", "/abs/path", "tcp://host:port" and "http://host:port".
// Returns invalid_argument naming the accepted forms for anything else.
Result<Endpoint> parse_endpoint(std::string_view docker_host);

// $DOCKER_HOST when set and non-empty, else kDefaultDockerHost.
std::string docker_host_from_env();

}  // namespace odd::engine
