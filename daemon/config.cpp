#include "daemon/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <initializer_list>
#include <limits>
#include <set>
#include <system_error>
#include <utility>

#include "engine/endpoint.hpp"
#include "proto/duration.hpp"
#include "proto/spec.hpp"
#include "proto/yaml_document.hpp"

namespace odd::daemon {

namespace {

namespace fs = std::filesystem;
using Keys = std::initializer_list<std::string_view>;

constexpr std::size_t kMaxConfigBytes = 1024 * 1024;
constexpr std::size_t kMaxSecretBytes = 1024 * 1024;
// sun_path holds 108 bytes including the terminating NUL.
constexpr std::size_t kMaxSocketPath = 107;
constexpr std::size_t kMaxHostName = 63;

const Keys kTopKeys = {"socket",          "socket_group",  "state_dir",       "docker_host",
                       "max_concurrency", "allowed_roots", "retention",       "hosts",
                       "secrets",         "log_level",     "default_network", "stop_grace",
                       "shutdown_grace",  "limits",        "build_retention"};
const Keys kRetentionKeys = {"runs", "days"};
const Keys kLimitsKeys = {"max_connections", "max_request_bytes", "max_header_bytes"};
const Keys kHostKeys = {"address",     "port",   "user",         "identity",         "agent",
                        "known_hosts", "docker", "max_sessions", "passphrase_secret"};
const Keys kSecretKeys = {"file"};
const Keys kLogLevels = {"trace", "debug", "info", "warn", "error", "off"};

std::string quote(std::string_view text) {
  constexpr std::size_t kShown = 60;
  std::string out = "\"";
  std::size_t i = 0;
  for (; i < text.size() && i < kShown; ++i) {
    const char c = text[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  if (i < text.size()) out += "...";
  out += '"';
  return out;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return quote(node.Scalar());
  }
  return "a value of another type";
}

// Levenshtein distance plus transpositions of neighbours ("stpes" is one edit from "steps").
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  const std::size_t w = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * w);
  for (std::size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      std::size_t best =
          std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        best = std::min(best, d[(i - 2) * w + j - 2] + 1);
      }
      d[i * w + j] = best;
    }
  }
  return d[a.size() * w + b.size()];
}

// The closest known key within 2 edits (1 for keys of 3 letters or fewer), or "".
std::string closest(std::string_view word, Keys candidates) {
  if (word.size() > 64) return "";
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const std::string_view c : candidates) {
    const std::size_t limit = c.size() <= 3 ? 1 : 2;
    const std::size_t d = edit_distance(word, c);
    if (d <= limit && d < best_distance) {
      best = std::string(c);
      best_distance = d;
    }
  }
  return best;
}

std::string join(Keys words) {
  std::string out;
  for (const std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

bool host_name_ok(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostName) return false;
  const auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lower_digit(c) || c == '.' || c == '_' || c == '-'; });
}

// The identifiers `${{ secrets.NAME }}` accepts (proto/template.hpp).
bool secret_name_ok(std::string_view name) {
  if (name.empty()) return false;
  const auto alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!alpha(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9') || c == '-'; });
}

// Docker network names: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
bool network_name_ok(std::string_view name) {
  if (name.empty()) return true;
  const auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

fs::path normal_absolute(std::string_view text) {
  fs::path p = fs::path(text).lexically_normal();
  if (!p.has_filename() && p != p.root_path()) p = p.parent_path();
  return p;
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
  std::int64_t value = 0;
  if (text.starts_with('+')) text.remove_prefix(1);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// "16384", "16KiB", "2 MiB", "1GiB", "512B".
std::optional<std::size_t> parse_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc()) return std::nullopt;
  std::string_view unit = text.substr(digits);
  if (unit.starts_with(' ')) unit.remove_prefix(1);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KiB") {
    scale = 1024;
  } else if (unit == "MiB") {
    scale = 1024 * 1024;
  } else if (unit == "GiB") {
    scale = 1024 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (value > std::numeric_limits<std::uint64_t>::max() / scale) return std::nullopt;
  return static_cast<std::size_t>(value * scale);
}

std::string size_text(std::size_t bytes) {
  if (bytes % (1024 * 1024 * 1024) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes % (1024 * 1024) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes % 1024 == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

// Reads one document's nodes into a DaemonConfig; every error names the file and key path.
class ConfigReader {
 public:
  explicit ConfigReader(std::string_view file) : file_(file) {}

  Status fail(std::string_view path, std::string_view what) const {
    std::string message = file_;
    message += ": ";
    if (!path.empty()) {
      message += path;
      message += ": ";
    }
    message += what;
    return invalid_argument(std::move(message));
  }

  Status expected(std::string_view path, std::string_view what, const YAML::Node& got) const {
    std::string message = "expected ";
    message += what;
    message += ", got ";
    message += describe(got);
    return fail(path, message);
  }

  Status read(const YAML::Node& root, DaemonConfig& out) const {
    if (!root.IsDefined() || root.IsNull()) return {};
    if (!root.IsMap()) return expected("", "a mapping of settings", root);
    if (auto s = check_keys(root, "", kTopKeys); !s.ok()) return s;
    for (const auto& entry : root) {
      const std::string& key = entry.first.Scalar();
      const YAML::Node& value = entry.second;
      Status s;
      if (key == "socket") {
        s = assign(out.socket, read_path(value, key, kMaxSocketPath));
      } else if (key == "socket_group") {
        s = read_group(value, out.socket_group);
      } else if (key == "state_dir") {
        s = assign(out.state_dir, read_path(value, key, 0));
      } else if (key == "docker_host") {
        s = read_docker_host(value, out.docker_host);
      } else if (key == "max_concurrency") {
        s = assign_int(out.max_concurrency, value, key, 1, 1000);
      } else if (key == "allowed_roots") {
        s = read_roots(value, out.allowed_roots);
      } else if (key == "retention") {
        s = read_retention(value, out.retention);
      } else if (key == "hosts") {
        s = read_hosts(value, out.hosts);
      } else if (key == "secrets") {
        s = read_secrets(value, out.secrets);
      } else if (key == "log_level") {
        s = read_log_level(value, key, out.log_level);
      } else if (key == "default_network") {
        s = read_network(value, out.default_network);
      } else if (key == "stop_grace") {
        s = assign(out.stop_grace, read_duration(value, key));
      } else if (key == "shutdown_grace") {
        s = assign(out.shutdown_grace, read_duration(value, key));
      } else if (key == "limits") {
        s = read_limits(value, out.limits);
      } else if (key == "build_retention") {
        s = assign_int(out.build_retention, value, key, 1, 1000);
      }
      if (!s.ok()) return s;
    }
    for (const auto& [name, host] : out.hosts) {
      if (host.passphrase_secret && !out.secrets.contains(*host.passphrase_secret)) {
        return fail(proto::spec_path_key(proto::spec_path_key("hosts", name), "passphrase_secret"),
                    "names no secret of `secrets`: \"" + *host.passphrase_secret + "\"");
      }
    }
    return {};
  }

 private:
  template <class T, class U>
  static Status assign(T& target, Result<U> value) {
    if (!value) return value.error();
    target = std::move(*value);
    return {};
  }

  template <class T>
  Status assign_int(T& target, const YAML::Node& node, std::string_view path, std::int64_t lo,
                    std::int64_t hi) const {
    auto value = read_int(node, path, lo, hi);
    if (!value) return value.error();
    target = static_cast<T>(*value);
    return {};
  }

  // Unknown, duplicate and non-string keys, in the order of the text.
  Status check_keys(const YAML::Node& map, std::string_view path, Keys known) const {
    std::set<std::string, std::less<>> seen;
    for (const auto& entry : map) {
      if (!entry.first.IsScalar()) {
        return fail(path, "expected string keys, got " + describe(entry.first) + " as a key");
      }
      const std::string& key = entry.first.Scalar();
      const std::string at = proto::spec_path_key(path, key);
      if (!seen.insert(key).second) return fail(at, "duplicate key");
      if (known.size() == 0) continue;
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      const std::string near = closest(key, known);
      if (!near.empty()) return fail(at, "unknown key (did you mean \"" + near + "\"?)");
      return fail(at, "unknown key (expected one of: " + join(known) + ")");
    }
    return {};
  }

  Result<std::string> read_string(const YAML::Node& node, std::string_view path,
                                  std::string_view what) const {
    if (!node.IsScalar()) return expected(path, what, node);
    return node.Scalar();
  }

  Result<std::int64_t> read_int(const YAML::Node& node, std::string_view path, std::int64_t lo,
                                std::int64_t hi) const {
    const std::string what = "an integer " + std::to_string(lo) + "-" + std::to_string(hi);
    if (!node.IsScalar()) return expected(path, what, node);
    const auto value = parse_integer(node.Scalar());
    if (!value || *value < lo || *value > hi) return expected(path, what, node);
    return *value;
  }

  Result<bool> read_bool(const YAML::Node& node, std::string_view path) const {
    if (node.IsScalar()) {
      const std::string& t = node.Scalar();
      if (t == "true" || t == "True" || t == "TRUE") return true;
      if (t == "false" || t == "False" || t == "FALSE") return false;
    }
    return expected(path, "true or false", node);
  }

  Result<std::chrono::milliseconds> read_duration(const YAML::Node& node,
                                                  std::string_view path) const {
    constexpr std::string_view kWhat = "a duration such as \"10s\" or \"30m\"";
    if (!node.IsScalar()) return expected(path, kWhat, node);
    auto value = proto::parse_duration(node.Scalar());
    if (!value) return expected(path, kWhat, node);
    return *value;
  }

  // An absolute path, lexically normalised; `max_bytes` 0 means no bound.
  Result<fs::path> read_path(const YAML::Node& node, std::string_view path,
                             std::size_t max_bytes) const {
    std::string what = "an absolute path";
    if (max_bytes != 0) {
      what += " of at most " + std::to_string(max_bytes) + " bytes (a Unix socket's limit)";
    }
    if (!node.IsScalar()) return expected(path, what, node);
    const std::string& text = node.Scalar();
    if (text.empty() || text[0] != '/' || text.find('\0') != std::string::npos) {
      return expected(path, what, node);
    }
    fs::path p = normal_absolute(text);
    if (max_bytes != 0 && p.native().size() > max_bytes) return expected(path, what, node);
    return p;
  }

  Result<std::size_t> read_size(const YAML::Node& node, std::string_view path, std::size_t lo,
                                std::size_t hi) const {
    const std::string what = "a size in bytes such as 16384 or \"16KiB\" (" + size_text(lo) +
                             " to " + size_text(hi) + ")";
    if (!node.IsScalar()) return expected(path, what, node);
    const auto value = parse_size(node.Scalar());
    if (!value || *value < lo || *value > hi) return expected(path, what, node);
    return *value;
  }

  Status read_group(const YAML::Node& node, std::string& out) const {
    constexpr std::string_view kWhat = "a group name (or \"\" to leave the socket's group alone)";
    auto text = read_string(node, "socket_group", kWhat);
    if (!text) return text.error();
    const bool bad = std::any_of(text->begin(), text->end(), [](char c) {
      return std::isspace(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '/' ||
             static_cast<unsigned char>(c) < 0x20;
    });
    if (bad) return expected("socket_group", kWhat, node);
    out = std::move(*text);
    return {};
  }

  Status read_docker_host(const YAML::Node& node, std::string& out) const {
    constexpr std::string_view kWhat = "a dockerd address such as \"unix:///var/run/docker.sock\"";
    auto text = read_string(node, "docker_host", kWhat);
    if (!text) return text.error();
    auto endpoint = engine::parse_endpoint(*text);
    if (!endpoint) return fail("docker_host", endpoint.error().message());
    out = std::move(*text);
    return {};
  }

  Status read_log_level(const YAML::Node& node, std::string_view path, std::string& out) const {
    const std::string what = "one of " + join(kLogLevels);
    auto text = read_string(node, path, what);
    if (!text) return text.error();
    if (std::find(kLogLevels.begin(), kLogLevels.end(), *text) == kLogLevels.end()) {
      return expected(path, what, node);
    }
    out = std::move(*text);
    return {};
  }

  Status read_network(const YAML::Node& node, std::string& out) const {
    constexpr std::string_view kWhat =
        "a docker network name such as \"none\" or \"host\" (\"\" for dockerd's default)";
    if (node.IsNull()) {
      out.clear();
      return {};
    }
    auto text = read_string(node, "default_network", kWhat);
    if (!text) return text.error();
    if (!network_name_ok(*text)) return expected("default_network", kWhat, node);
    out = std::move(*text);
    return {};
  }

  Status read_roots(const YAML::Node& node, std::optional<std::vector<fs::path>>& out) const {
    if (node.IsNull()) {
      out.reset();
      return {};
    }
    if (!node.IsSequence()) return expected("allowed_roots", "a list of absolute paths", node);
    if (node.size() == 0) {
      return fail("allowed_roots",
                  "expected at least one root (leave the key out to allow any path)");
    }
    std::vector<fs::path> roots;
    std::size_t i = 0;
    for (const auto& item : node) {
      auto p = read_path(item, proto::spec_path_index("allowed_roots", i++), 0);
      if (!p) return p.error();
      roots.push_back(std::move(*p));
    }
    out = std::move(roots);
    return {};
  }

  Status read_retention(const YAML::Node& node, RetentionPolicy& out) const {
    if (node.IsNull()) return {};
    if (!node.IsMap()) return expected("retention", "a mapping {runs, days}", node);
    if (auto s = check_keys(node, "retention", kRetentionKeys); !s.ok()) return s;
    for (const auto& entry : node) {
      const std::string& key = entry.first.Scalar();
      const std::string at = "retention." + key;
      if (key == "runs") {
        auto runs = read_int(entry.second, at, 1, 1'000'000);
        if (!runs) return runs.error();
        out.runs = static_cast<std::size_t>(*runs);
      } else {
        auto days = read_int(entry.second, at, 1, 36'500);
        if (!days) return days.error();
        out.days = std::chrono::days(*days);
      }
    }
    return {};
  }

  Status read_limits(const YAML::Node& node, ConnectionLimits& out) const {
    if (node.IsNull()) return {};
    if (!node.IsMap()) {
      return expected("limits", "a mapping {max_connections, max_request_bytes, max_header_bytes}",
                      node);
    }
    if (auto s = check_keys(node, "limits", kLimitsKeys); !s.ok()) return s;
    for (const auto& entry : node) {
      const std::string& key = entry.first.Scalar();
      const std::string at = "limits." + key;
      if (key == "max_connections") {
        auto n = read_int(entry.second, at, 1, 10'000);
        if (!n) return n.error();
        out.max_connections = static_cast<std::size_t>(*n);
      } else if (key == "max_request_bytes") {
        auto n = read_size(entry.second, at, 64 * 1024, std::size_t{1} << 30);
        if (!n) return n.error();
        out.max_request_bytes = *n;
      } else {
        auto n = read_size(entry.second, at, 1024, 1024 * 1024);
        if (!n) return n.error();
        out.max_header_bytes = *n;
      }
    }
    return {};
  }

  Status read_hosts(const YAML::Node& node,
                    std::map<std::string, HostConfig, std::less<>>& out) const {
    out.clear();
    if (node.IsNull()) return {};
    if (!node.IsMap()) return expected("hosts", "a mapping of host names to hosts", node);
    if (auto s = check_keys(node, "hosts", {}); !s.ok()) return s;
    for (const auto& entry : node) {
      const std::string& name = entry.first.Scalar();
      const std::string at = proto::spec_path_key("hosts", name);
      if (name == "local") {
        return fail(at, "the name \"local\" is reserved for this machine's dockerd");
      }
      if (!host_name_ok(name)) {
        return fail(at,
                    "a host name must match [a-z0-9][a-z0-9._-]* (lowercase letters, digits, "
                    "'.', '_', '-') and have at most 63 characters");
      }
      auto host = read_host(entry.second, at);
      if (!host) return host.error();
      out.emplace(name, std::move(*host));
    }
    return {};
  }

  Result<HostConfig> read_host(const YAML::Node& node, const std::string& path) const {
    if (!node.IsMap()) {
      return expected(path, "a mapping {address, user, identity or agent, known_hosts, ...}", node);
    }
    if (auto s = check_keys(node, path, kHostKeys); !s.ok()) return s;
    HostConfig host;
    bool has_address = false;
    bool has_user = false;
    bool has_known_hosts = false;
    for (const auto& entry : node) {
      const std::string& key = entry.first.Scalar();
      const YAML::Node& value = entry.second;
      const std::string at = path + "." + key;
      Status s;
      if (key == "address") {
        auto text = read_string(value, at, "a host name or IP address");
        if (!text) return text.error();
        if (text->empty() || text->find_first_of(" \t\r\n/") != std::string::npos) {
          return expected(at, "a host name or IP address", value);
        }
        host.address = std::move(*text);
        has_address = true;
      } else if (key == "port") {
        s = assign_int(host.port, value, at, 1, 65535);
      } else if (key == "user") {
        auto text = read_string(value, at, "a user name");
        if (!text) return text.error();
        if (text->empty()) return expected(at, "a user name", value);
        host.user = std::move(*text);
        has_user = true;
      } else if (key == "identity") {
        auto p = read_path(value, at, 0);
        if (!p) return p.error();
        host.identity = std::move(*p);
      } else if (key == "agent") {
        s = assign(host.agent, read_bool(value, at));
      } else if (key == "known_hosts") {
        s = assign(host.known_hosts, read_path(value, at, 0));
        has_known_hosts = true;
      } else if (key == "docker") {
        s = assign(host.docker, read_bool(value, at));
      } else if (key == "max_sessions") {
        s = assign_int(host.max_sessions, value, at, 1, 10);
      } else if (key == "passphrase_secret") {
        auto text = read_string(value, at, "the name of a secret");
        if (!text) return text.error();
        host.passphrase_secret = std::move(*text);
      }
      if (!s.ok()) return s;
    }
    if (!has_address) return fail(path + ".address", "missing, expected a host name or IP address");
    if (!has_user) return fail(path + ".user", "missing, expected a user name");
    if (!has_known_hosts) {
      return fail(path + ".known_hosts",
                  "missing, expected the absolute path of a known_hosts file (host keys are "
                  "always checked)");
    }
    if (host.identity.has_value() == host.agent) {
      return fail(path, std::string("expected exactly one of identity (a key file) and agent: "
                                    "true, got ") +
                            (host.agent ? "both" : "neither"));
    }
    if (host.passphrase_secret && !host.identity) {
      return fail(path + ".passphrase_secret", "is for an identity file, and this host uses agent");
    }
    return host;
  }

  Status read_secrets(const YAML::Node& node,
                      std::map<std::string, SecretConfig, std::less<>>& out) const {
    out.clear();
    if (node.IsNull()) return {};
    if (!node.IsMap())
      return expected("secrets", "a mapping of secret names to {file: PATH}", node);
    if (auto s = check_keys(node, "secrets", {}); !s.ok()) return s;
    for (const auto& entry : node) {
      const std::string& name = entry.first.Scalar();
      const std::string at = proto::spec_path_key("secrets", name);
      if (!secret_name_ok(name)) {
        return fail(at, "a secret name must match [A-Za-z_][A-Za-z0-9_-]*");
      }
      const YAML::Node& value = entry.second;
      if (!value.IsMap()) return expected(at, "a mapping {file: PATH}", value);
      if (auto s = check_keys(value, at, kSecretKeys); !s.ok()) return s;
      const YAML::Node file = value["file"];
      if (!file) return fail(at + ".file", "missing, expected the absolute path of a file");
      auto p = read_path(file, at + ".file", 0);
      if (!p) return p.error();
      out.emplace(name, SecretConfig{std::move(*p)});
    }
    return {};
  }

  std::string file_;
};

// Reads a regular file of at most `limit` bytes. `what` prefixes errors ("secret X: /path").
Result<std::string> read_small_file(const fs::path& path, std::size_t limit,
                                    std::string_view what) {
  const std::string name(what);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return errno_status(errno, name);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status(errno, name);
  if (!S_ISREG(st.st_mode)) return invalid_argument(name + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > limit) {
    return invalid_argument(name + ": the file is " + std::to_string(st.st_size) +
                            " bytes, more than the limit of " + size_text(limit));
  }
  std::string data;
  char buffer[16 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, name);
    }
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
    if (data.size() > limit) {
      return invalid_argument(name + ": the file is more than the limit of " + size_text(limit));
    }
  }
  return data;
}

bool lies_within(const fs::path& p, const fs::path& root) {
  auto pi = p.begin();
  for (auto ri = root.begin(); ri != root.end(); ++ri) {
    if (ri->empty()) continue;  // a trailing separator
    if (pi == p.end() || *pi != *ri) return false;
    ++pi;
  }
  return true;
}

}  // namespace

Status DaemonConfig::apply(const ConfigOverrides& overrides) {
  const auto bad = [](std::string_view flag, std::string_view what, std::string_view got) {
    return invalid_argument(std::string(flag) + ": expected " + std::string(what) + ", got " +
                            quote(got));
  };
  if (overrides.socket) {
    const std::string& text = overrides.socket->native();
    if (!overrides.socket->is_absolute() || text.size() > kMaxSocketPath) {
      return bad("--socket", "an absolute path of at most 107 bytes", text);
    }
  }
  if (overrides.state_dir && !overrides.state_dir->is_absolute()) {
    return bad("--state-dir", "an absolute path", overrides.state_dir->native());
  }
  if (overrides.docker_host) {
    auto endpoint = engine::parse_endpoint(*overrides.docker_host);
    if (!endpoint) return endpoint.error().with_context("--docker-host");
  }
  if (overrides.log_level &&
      std::find(kLogLevels.begin(), kLogLevels.end(), *overrides.log_level) == kLogLevels.end()) {
    return bad("--log-level", "one of " + join(kLogLevels), *overrides.log_level);
  }
  if (overrides.socket) socket = normal_absolute(overrides.socket->native());
  if (overrides.state_dir) state_dir = normal_absolute(overrides.state_dir->native());
  if (overrides.docker_host) docker_host = *overrides.docker_host;
  if (overrides.log_level) log_level = *overrides.log_level;
  return {};
}

DaemonConfig default_config() {
  DaemonConfig config;
  config.docker_host = engine::docker_host_from_env();
  return config;
}

Result<DaemonConfig> parse_config(std::string_view text, std::string_view file_name,
                                  const DaemonConfig& base) {
  const ConfigReader reader(file_name);
  if (text.size() > kMaxConfigBytes) {
    return reader.fail(
        "", "the file is " + std::to_string(text.size()) + " bytes, more than the limit of 1MiB");
  }
  auto root = proto::load_yaml_document(text);
  if (!root) return reader.fail("", root.error().message());
  DaemonConfig out = base;
  try {
    if (auto s = reader.read(*root, out); !s.ok()) return s;
  } catch (const YAML::Exception& e) {
    return reader.fail("", proto::describe_yaml_error(e));
  }
  return out;
}

Result<DaemonConfig> load_config(const fs::path& path, bool explicit_path) {
  auto text = read_small_file(path, kMaxConfigBytes, path.native());
  if (!text) {
    if (text.error().code() == Code::kNotFound && !explicit_path) return default_config();
    if (text.error().code() == Code::kNotFound) {
      return not_found("config file " + path.native() + " does not exist (given with --config)");
    }
    return text.error();
  }
  return parse_config(*text, path.native(), default_config());
}

Result<DaemonConfig> load_effective_config(const ConfigOverrides& overrides) {
  auto config = overrides.config ? load_config(*overrides.config, true)
                                 : load_config(fs::path(kDefaultConfigPath), false);
  if (!config) return config.error();
  if (auto s = config->apply(overrides); !s.ok()) return s;
  return config;
}

Result<std::map<std::string, std::string, std::less<>>> load_secret_values(
    const DaemonConfig& config) {
  std::map<std::string, std::string, std::less<>> values;
  for (const auto& [name, secret] : config.secrets) {
    auto value = read_small_file(secret.file, kMaxSecretBytes,
                                 "secret " + name + ": " + secret.file.native());
    if (!value) return value.error();
    values.emplace(name, std::move(*value));
  }
  return values;
}

Status check_allowed_path(const DaemonConfig& config, const fs::path& p, std::string_view what) {
  if (!config.allowed_roots) return {};
  if (!p.is_absolute()) {
    return invalid_argument(std::string(what) + " " + quote(p.native()) +
                            ": expected an absolute path");
  }
  std::error_code ec;
  const fs::path resolved = fs::weakly_canonical(p, ec);
  if (ec) {
    return permission_denied(std::string(what) + " " + p.native() +
                             ": cannot resolve the path: " + ec.message());
  }
  std::string roots;
  for (const fs::path& root : *config.allowed_roots) {
    std::error_code root_ec;
    fs::path resolved_root = fs::weakly_canonical(root, root_ec);
    if (root_ec) resolved_root = root;
    if (lies_within(resolved, resolved_root)) return {};
    if (!roots.empty()) roots += ", ";
    roots += root.native();
  }
  std::string message(what);
  message += " ";
  message += p.native();
  if (resolved != p) {
    message += " (resolves to ";
    message += resolved.native();
    message += ")";
  }
  message += " is outside the allowed roots (";
  message += roots;
  message += "; see allowed_roots in the daemon's config)";
  return permission_denied(std::move(message));
}

}  // namespace odd::daemon
