#pragma once
// DaemonConfig: oddd's configuration (DESIGN §10, §11) as read from /etc/odd/oddd.yaml and
// overridden by command-line flags, plus the checks that use it (allowed_roots, secret files).
// Every key has a default, so an empty file is a valid config; etc/oddd.yaml documents them.
// Values only; load_config and load_secret_values read files (blocking, small), so call them at
// start and on SIGHUP, from any one thread at a time.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace odd::daemon {

inline constexpr std::string_view kDefaultConfigPath = "/etc/odd/oddd.yaml";

// How many finished runs the run store keeps: the newest `runs`, none older than `days`.
struct RetentionPolicy {
  std::size_t runs = 500;
  std::chrono::days days{30};
  friend bool operator==(const RetentionPolicy&, const RetentionPolicy&) = default;
};

// Bounds on the control socket (DESIGN §11).
struct ConnectionLimits {
  std::size_t max_connections = 64;
  std::size_t max_request_bytes = 2 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  friend bool operator==(const ConnectionLimits&, const ConnectionLimits&) = default;
};

// A remote tester VM reached over SSH; exactly one of `identity` and `agent` is set.
struct HostConfig {
  std::string address;  // required: a host name or IP address
  std::uint16_t port = 22;
  std::string user;                               // required
  std::optional<std::filesystem::path> identity;  // absolute path of a private key file
  bool agent = false;                             // authenticate through $SSH_AUTH_SOCK
  std::filesystem::path known_hosts;              // required, absolute
  bool docker = false;                            // its dockerd is usable over SSH
  int max_sessions = 4;                           // 1..10
  // The secret (of `secrets`) holding the identity's passphrase, when it has one.
  std::optional<std::string> passphrase_secret;
  friend bool operator==(const HostConfig&, const HostConfig&) = default;
};

// A secret whose value is the exact bytes of `file` (absolute).
struct SecretConfig {
  std::filesystem::path file;
  friend bool operator==(const SecretConfig&, const SecretConfig&) = default;
};

// Command-line flags that override the file; unset ones leave the file's value.
struct ConfigOverrides {
  std::optional<std::filesystem::path> config;  // --config: the file, which then must exist
  std::optional<std::filesystem::path> socket;
  std::optional<std::filesystem::path> state_dir;
  std::optional<std::string> docker_host;
  std::optional<std::string> log_level;
};

struct DaemonConfig {
  std::filesystem::path socket = "/run/odd/oddd.sock";
  std::string socket_group = "odd";  // "": leave the socket's group as created
  std::filesystem::path state_dir = "/var/lib/odd";
  // The struct's default is dockerd's usual socket; default_config() prefers $DOCKER_HOST.
  std::string docker_host = "unix:///var/run/docker.sock";
  int max_concurrency = 8;  // jobs in flight across all runs
  // Unset: any path may be a bind-mount source or build context (oddd warns at start).
  // Set: absolute, lexically normalised paths, at least one.
  std::optional<std::vector<std::filesystem::path>> allowed_roots;
  RetentionPolicy retention;
  std::map<std::string, HostConfig, std::less<>> hosts;
  std::map<std::string, SecretConfig, std::less<>> secrets;
  std::string log_level = "info";  // trace, debug, info, warn, error, off
  std::string default_network;     // "": dockerd's default; "none" where dockerd has no bridge
  std::chrono::milliseconds stop_grace{10'000};      // stop's grace before kill
  std::chrono::milliseconds shutdown_grace{30'000};  // how long SIGTERM waits for cleanup
  ConnectionLimits limits;
  std::size_t build_retention = 5;  // images kept per repository

  // Applies the flags that are set; invalid_argument naming the flag ("--log-level: ...").
  // `config` is not applied here: it chooses the file (see load_config).
  Status apply(const ConfigOverrides& overrides);

  friend bool operator==(const DaemonConfig&, const DaemonConfig&) = default;
};

// The built-in defaults, with docker_host from $DOCKER_HOST when that is set and non-empty.
DaemonConfig default_config();

// Reads the YAML config at `path` over default_config(). An empty file, or one of comments only,
// gives the defaults; so does a missing file unless `explicit_path` (it came from --config): then
// not_found naming the path. Every other error is invalid_argument (permission_denied when the
// file cannot be read) and reads "<path>: <key path>: <what was expected>, got <what>"; unknown
// keys say "did you mean" where a known key is close.
Result<DaemonConfig> load_config(const std::filesystem::path& path, bool explicit_path);

// The same over `text`, with `file_name` only for messages, over `base` instead of the defaults.
Result<DaemonConfig> parse_config(std::string_view text, std::string_view file_name,
                                  const DaemonConfig& base);

// load_config of overrides.config (explicit) or kDefaultConfigPath (not), then apply(overrides).
Result<DaemonConfig> load_effective_config(const ConfigOverrides& overrides);

// Reads every configured secret's file, exactly its bytes: name → value. Errors name the secret
// and its file: not_found, permission_denied, invalid_argument (not a regular file, or larger
// than 1 MiB), internal for other I/O errors.
Result<std::map<std::string, std::string, std::less<>>> load_secret_values(
    const DaemonConfig& config);

// Whether `p` may be used as `what` ("bind mount source", "build context"): ok when
// allowed_roots is unset; otherwise `p`, resolved with weakly_canonical so `..` and symlinks are
// followed, must lie within one (equally resolved) root. invalid_argument for a relative `p`;
// permission_denied naming `p`, `what` and the roots when it lies outside, or cannot be resolved.
Status check_allowed_path(const DaemonConfig& config, const std::filesystem::path& p,
                          std::string_view what);

}  // namespace odd::daemon
