#include "daemon/config.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace odd::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/oddcfg-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Result<DaemonConfig> parse(std::string_view text) {
  return parse_config(text, "/etc/odd/oddd.yaml", DaemonConfig{});
}

std::string error_of(std::string_view text) {
  auto config = parse(text);
  REQUIRE_FALSE(config.has_value());
  CHECK(config.error().code() == Code::kInvalidArgument);
  return config.error().message();
}

// A host entry that is valid, to which one test case adds or changes one key.
constexpr std::string_view kHostHead = "hosts:\n  tester1:\n    address: 10.0.0.85\n";

TEST_CASE("an empty config file, or one of comments only, gives the defaults") {
  for (std::string_view text : {"", "\n\n", "# nothing here\n  # indented comment\n", "---\n"}) {
    CAPTURE(text);
    auto config = parse(text);
    REQUIRE(config.has_value());
    CHECK(*config == DaemonConfig{});
  }
  const DaemonConfig d;
  CHECK(d.socket == "/run/odd/oddd.sock");
  CHECK(d.socket_group == "odd");
  CHECK(d.state_dir == "/var/lib/odd");
  CHECK(d.max_concurrency == 8);
  CHECK_FALSE(d.allowed_roots.has_value());
  CHECK(d.retention.runs == 500);
  CHECK(d.retention.days == std::chrono::days(30));
  CHECK(d.hosts.empty());
  CHECK(d.secrets.empty());
  CHECK(d.log_level == "info");
  CHECK(d.default_network.empty());
  CHECK(d.stop_grace == 10s);
  CHECK(d.shutdown_grace == 30s);
  CHECK(d.limits.max_connections == 64);
  CHECK(d.limits.max_request_bytes == 2 * 1024 * 1024);
  CHECK(d.limits.max_header_bytes == 16 * 1024);
  CHECK(d.build_retention == 5);
}

TEST_CASE("every key of the config is read") {
  constexpr std::string_view kText = R"(
socket: /run/odd/test.sock
socket_group: ci
state_dir: /srv/odd/state/
docker_host: tcp://127.0.0.1:2375
max_concurrency: 3
allowed_roots: [/home/runner/work/, /srv/odd/../odd2]
retention: { runs: 20, days: 7 }
hosts:
  tester1:
    address: 10.0.0.85
    port: 2222
    user: xplg
    identity: /etc/odd/keys/tester1
    known_hosts: /etc/odd/known_hosts
    docker: true
    max_sessions: 10
    passphrase_secret: token_2
  tester-2.lab:
    address: tester2.example
    user: ci
    agent: true
    known_hosts: /etc/odd/known_hosts
secrets:
  TESTER_ENV: { file: /etc/odd/secrets/tester.env }
  token_2: { file: /run/credentials/oddd.service/token }
log_level: debug
default_network: none
stop_grace: 1m30s
shutdown_grace: 2m
limits: { max_connections: 5, max_request_bytes: 4MiB, max_header_bytes: 8192 }
build_retention: 2
)";
  auto parsed = parse(kText);
  REQUIRE(parsed.has_value());
  const DaemonConfig c = *parsed;
  CHECK(c.socket == "/run/odd/test.sock");
  CHECK(c.socket_group == "ci");
  CHECK(c.state_dir == "/srv/odd/state");
  CHECK(c.docker_host == "tcp://127.0.0.1:2375");
  CHECK(c.max_concurrency == 3);
  REQUIRE(c.allowed_roots.has_value());
  CHECK(*c.allowed_roots == std::vector<fs::path>{"/home/runner/work", "/srv/odd2"});
  CHECK(c.retention == RetentionPolicy{20, std::chrono::days(7)});
  REQUIRE(c.hosts.size() == 2);
  const HostConfig& t1 = c.hosts.at("tester1");
  CHECK(t1.address == "10.0.0.85");
  CHECK(t1.port == 2222);
  CHECK(t1.user == "xplg");
  CHECK(t1.identity == fs::path("/etc/odd/keys/tester1"));
  CHECK_FALSE(t1.agent);
  CHECK(t1.known_hosts == "/etc/odd/known_hosts");
  CHECK(t1.docker);
  CHECK(t1.max_sessions == 10);
  CHECK(t1.passphrase_secret == std::optional<std::string>("token_2"));
  const HostConfig& t2 = c.hosts.at("tester-2.lab");
  CHECK(t2.address == "tester2.example");
  CHECK(t2.port == 22);
  CHECK(t2.agent);
  CHECK_FALSE(t2.identity.has_value());
  CHECK_FALSE(t2.docker);
  CHECK(t2.max_sessions == 4);
  CHECK_FALSE(t2.passphrase_secret.has_value());
  REQUIRE(c.secrets.size() == 2);
  CHECK(c.secrets.at("TESTER_ENV").file == "/etc/odd/secrets/tester.env");
  CHECK(c.secrets.at("token_2").file == "/run/credentials/oddd.service/token");
  CHECK(c.log_level == "debug");
  CHECK(c.default_network == "none");
  CHECK(c.stop_grace == 90s);
  CHECK(c.shutdown_grace == 2min);
  CHECK(c.limits == ConnectionLimits{5, 4 * 1024 * 1024, 8192});
  CHECK(c.build_retention == 2);
}

TEST_CASE("keys left out keep their defaults, also inside retention and limits") {
  auto c = parse("retention: {days: 3}\nlimits: {max_connections: 9}\n");
  REQUIRE(c.has_value());
  CHECK(c->retention.runs == 500);
  CHECK(c->retention.days == std::chrono::days(3));
  CHECK(c->limits.max_connections == 9);
  CHECK(c->limits.max_request_bytes == 2 * 1024 * 1024);
  CHECK(c->socket == "/run/odd/oddd.sock");
}

TEST_CASE("empty values of collections mean none, and allowed_roots: null means any path") {
  auto c = parse("hosts:\nsecrets: {}\nallowed_roots: ~\ndefault_network:\n");
  REQUIRE(c.has_value());
  CHECK(*c == DaemonConfig{});
}

struct Malformed {
  std::string_view text;
  std::string_view message;  // after "/etc/odd/oddd.yaml: "
};

TEST_CASE("a malformed config names the file and the key path at fault") {
  const Malformed cases[] = {
      {"socket: run/odd.sock",
       "socket: expected an absolute path of at most 107 bytes (a Unix socket's limit), got "
       "\"run/odd.sock\""},
      {"state_dir: [/a]", "state_dir: expected an absolute path, got a list"},
      {"socket_group: odd users",
       "socket_group: expected a group name (or \"\" to leave the socket's group alone), got "
       "\"odd users\""},
      {"docker_host: ftp://x",
       "docker_host: docker host \"ftp://x\": unsupported scheme (expected "
       "unix:///path/to/docker.sock or tcp://host:port)"},
      {"max_concurrency: 0", "max_concurrency: expected an integer 1-1000, got \"0\""},
      {"max_concurrency: lots", "max_concurrency: expected an integer 1-1000, got \"lots\""},
      {"allowed_roots: /srv", "allowed_roots: expected a list of absolute paths, got \"/srv\""},
      {"allowed_roots: [/srv, srv/odd]",
       "allowed_roots[1]: expected an absolute path, got \"srv/odd\""},
      {"allowed_roots: []",
       "allowed_roots: expected at least one root (leave the key out to allow any path)"},
      {"retention: 5", "retention: expected a mapping {runs, days}, got \"5\""},
      {"retention: {runs: -1}", "retention.runs: expected an integer 1-1000000, got \"-1\""},
      {"retention: {days: 1.5}", "retention.days: expected an integer 1-36500, got \"1.5\""},
      {"retention: {keep: 3}", "retention.keep: unknown key (expected one of: runs, days)"},
      {"hosts: [tester1]", "hosts: expected a mapping of host names to hosts, got a list"},
      {"hosts: {tester1: tester1.lab}",
       "hosts.tester1: expected a mapping {address, user, identity or agent, known_hosts, ...}, "
       "got \"tester1.lab\""},
      {"hosts: {local: {address: a, user: u, agent: true, known_hosts: /k}}",
       "hosts.local: the name \"local\" is reserved for this machine's dockerd"},
      {"hosts: {Tester1: {address: a, user: u, agent: true, known_hosts: /k}}",
       "hosts.Tester1: a host name must match [a-z0-9][a-z0-9._-]* (lowercase letters, digits, "
       "'.', '_', '-') and have at most 63 characters"},
      {"hosts: {tester1: {address: a, port: ssh, user: u, agent: true, known_hosts: /k}}",
       "hosts.tester1.port: expected an integer 1-65535, got \"ssh\""},
      {"hosts: {tester1: {address: a, port: 65536, user: u, agent: true, known_hosts: /k}}",
       "hosts.tester1.port: expected an integer 1-65535, got \"65536\""},
      {"hosts: {tester1: {user: u, agent: true, known_hosts: /k}}",
       "hosts.tester1.address: missing, expected a host name or IP address"},
      {"hosts: {tester1: {address: a, agent: true, known_hosts: /k}}",
       "hosts.tester1.user: missing, expected a user name"},
      {"hosts: {tester1: {address: a, user: u, agent: true}}",
       "hosts.tester1.known_hosts: missing, expected the absolute path of a known_hosts file "
       "(host keys are always checked)"},
      {"hosts: {tester1: {address: a, user: u, identity: /id, agent: true, known_hosts: /k}}",
       "hosts.tester1: expected exactly one of identity (a key file) and agent: true, got both"},
      {"hosts: {tester1: {address: a, user: u, known_hosts: /k}}",
       "hosts.tester1: expected exactly one of identity (a key file) and agent: true, got "
       "neither"},
      {"hosts: {tester1: {address: a, user: u, identity: keys/t1, known_hosts: /k}}",
       "hosts.tester1.identity: expected an absolute path, got \"keys/t1\""},
      {"hosts: {tester1: {address: a, user: u, agent: true, known_hosts: /k, max_sessions: 11}}",
       "hosts.tester1.max_sessions: expected an integer 1-10, got \"11\""},
      {"hosts: {tester1: {address: a, user: u, agent: true, known_hosts: /k, docker: yes}}",
       "hosts.tester1.docker: expected true or false, got \"yes\""},
      {"hosts: {tester1: {address: a, user: u, agent: 1, known_hosts: /k}}",
       "hosts.tester1.agent: expected true or false, got \"1\""},
      {"hosts: {tester1: {address: a, user: u, agent: true, known_hosts: /k, passwd: x}}",
       "hosts.tester1.passwd: unknown key (expected one of: address, port, user, identity, agent, "
       "known_hosts, docker, max_sessions, passphrase_secret)"},
      {"hosts: {t1: {address: a, user: u, identity: /id, known_hosts: /k, passphrase_secret: P}}",
       "hosts.t1.passphrase_secret: names no secret of `secrets`: \"P\""},
      {"hosts: {t1: {address: a, user: u, agent: true, known_hosts: /k, passphrase_secret: P}}\n"
       "secrets: {P: {file: /p}}",
       "hosts.t1.passphrase_secret: is for an identity file, and this host uses agent"},
      {"hosts: {\"tester one\": {address: a}}",
       "hosts[\"tester one\"]: a host name must match [a-z0-9][a-z0-9._-]* (lowercase letters, "
       "digits, '.', '_', '-') and have at most 63 characters"},
      {"secrets: {TESTER_ENV: /etc/odd/tester.env}",
       "secrets.TESTER_ENV: expected a mapping {file: PATH}, got \"/etc/odd/tester.env\""},
      {"secrets: {TESTER_ENV: {}}",
       "secrets.TESTER_ENV.file: missing, expected the absolute path of a file"},
      {"secrets: {TESTER_ENV: {file: tester.env}}",
       "secrets.TESTER_ENV.file: expected an absolute path, got \"tester.env\""},
      {"secrets: {1TOKEN: {file: /t}}",
       "secrets.1TOKEN: a secret name must match [A-Za-z_][A-Za-z0-9_-]*"},
      {"log_level: verbose",
       "log_level: expected one of trace, debug, info, warn, error, off, got \"verbose\""},
      {"default_network: \"my net\"",
       "default_network: expected a docker network name such as \"none\" or \"host\" (\"\" for "
       "dockerd's default), got \"my net\""},
      {"stop_grace: soon",
       "stop_grace: expected a duration such as \"10s\" or \"30m\", got \"soon\""},
      {"shutdown_grace: 0s",
       "shutdown_grace: expected a duration such as \"10s\" or \"30m\", got \"0s\""},
      {"shutdown_grace: 30",
       "shutdown_grace: expected a duration such as \"10s\" or \"30m\", got "
       "\"30\""},
      {"limits: {max_request_bytes: 2 MB}",
       "limits.max_request_bytes: expected a size in bytes such as 16384 or \"16KiB\" (64KiB to "
       "1GiB), got \"2 MB\""},
      {"limits: {max_header_bytes: 100}",
       "limits.max_header_bytes: expected a size in bytes such as 16384 or \"16KiB\" (1KiB to "
       "1MiB), got \"100\""},
      {"limits: {max_connections: 0}",
       "limits.max_connections: expected an integer 1-10000, got \"0\""},
      {"limits: {max_conections: 3}",
       "limits.max_conections: unknown key (did you mean \"max_connections\"?)"},
      {"build_retention: 0", "build_retention: expected an integer 1-1000, got \"0\""},
      {"build_retention: null", "build_retention: expected an integer 1-1000, got null"},
      {"socket: /a\nsocket: /b", "socket: duplicate key"},
      {"[socket]: /a", "expected string keys, got a list as a key"},
      {"- socket: /a", "expected a mapping of settings, got a list"},
      {"just text", "expected a mapping of settings, got \"just text\""},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    CHECK(error_of(c.text) == "/etc/odd/oddd.yaml: " + std::string(c.message));
  }
}

TEST_CASE("an unknown key is an error, with a did-you-mean when a known key is close") {
  CHECK(error_of("sokcet: /run/odd.sock") ==
        "/etc/odd/oddd.yaml: sokcet: unknown key (did you mean \"socket\"?)");
  CHECK(error_of("max_concurency: 2") ==
        "/etc/odd/oddd.yaml: max_concurency: unknown key (did you mean \"max_concurrency\"?)");
  const std::string far = error_of("colour: blue");
  CHECK(far.starts_with("/etc/odd/oddd.yaml: colour: unknown key (expected one of: socket, "));
  CHECK(far.find("build_retention") != std::string::npos);
  CHECK(error_of(std::string(kHostHead) + "    adress: x\n") ==
        "/etc/odd/oddd.yaml: hosts.tester1.adress: unknown key (did you mean \"address\"?)");
  CHECK(error_of("secrets: {T: {fil: /x}}") ==
        "/etc/odd/oddd.yaml: secrets.T.fil: unknown key (did you mean \"file\"?)");
}

TEST_CASE("YAML syntax errors and several documents name the line") {
  const std::string syntax = error_of("socket: /a\nhosts: {tester1: [\n");
  CHECK(syntax.starts_with("/etc/odd/oddd.yaml: invalid YAML at line "));
  CHECK(error_of("socket: /a\n---\nsocket: /b\n")
            .starts_with("/etc/odd/oddd.yaml: invalid YAML at line 2, column 1: expected a single "
                         "document"));
  CHECK(error_of("socket: /a\n,\n").starts_with("/etc/odd/oddd.yaml: invalid YAML at line "));
}

TEST_CASE("sizes are bytes or KiB, MiB, GiB, and paths are normalised") {
  auto c = parse(
      "limits: {max_request_bytes: \"1 GiB\", max_header_bytes: 1KiB}\n"
      "state_dir: /var/lib/../lib/odd/./x/\n");
  REQUIRE(c.has_value());
  CHECK(c->limits.max_request_bytes == std::size_t{1} << 30);
  CHECK(c->limits.max_header_bytes == 1024);
  CHECK(c->state_dir == "/var/lib/odd/x");
}

TEST_CASE("a missing config file is fine unless it was named with --config") {
  TempDir dir;
  const fs::path missing = dir.path() / "oddd.yaml";
  auto defaults = load_config(missing, false);
  REQUIRE(defaults.has_value());
  CHECK(*defaults == default_config());

  auto named = load_config(missing, true);
  REQUIRE_FALSE(named.has_value());
  CHECK(named.error().code() == Code::kNotFound);
  CHECK(named.error().message().find(missing.native()) != std::string::npos);
  CHECK(named.error().message().find("--config") != std::string::npos);
}

TEST_CASE("a config file's errors name the file it was read from") {
  TempDir dir;
  const fs::path file = dir.path() / "oddd.yaml";
  write_text(file, "hosts:\n  tester1:\n    address: a\n    port: ssh\n");
  auto config = load_config(file, true);
  REQUIRE_FALSE(config.has_value());
  CHECK(config.error().message() ==
        file.native() + ": hosts.tester1.port: expected an integer 1-65535, got \"ssh\"");

  write_text(file, "max_concurrency: 2\n");
  auto good = load_config(file, false);
  REQUIRE(good.has_value());
  CHECK(good->max_concurrency == 2);

  auto directory = load_config(dir.path(), true);
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().message() == dir.path().native() + ": not a regular file");
}

TEST_CASE("docker_host defaults to $DOCKER_HOST, and the file overrides it") {
  const char* old = std::getenv("DOCKER_HOST");
  const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
  ::setenv("DOCKER_HOST", "unix:///tmp/odd-test-docker.sock", 1);
  CHECK(default_config().docker_host == "unix:///tmp/odd-test-docker.sock");
  auto from_file = parse_config("docker_host: unix:///x.sock", "f", default_config());
  REQUIRE(from_file.has_value());
  CHECK(from_file->docker_host == "unix:///x.sock");
  ::setenv("DOCKER_HOST", "", 1);
  CHECK(default_config().docker_host == "unix:///var/run/docker.sock");
  ::unsetenv("DOCKER_HOST");
  CHECK(default_config().docker_host == "unix:///var/run/docker.sock");
  if (saved) ::setenv("DOCKER_HOST", saved->c_str(), 1);
}

TEST_CASE("flags override the file and are checked like it") {
  DaemonConfig c;
  ConfigOverrides o;
  o.socket = "/tmp/odd.sock";
  o.state_dir = "/tmp/odd-state/";
  o.docker_host = "unix:///tmp/d.sock";
  o.log_level = "trace";
  REQUIRE(c.apply(o).ok());
  CHECK(c.socket == "/tmp/odd.sock");
  CHECK(c.state_dir == "/tmp/odd-state");
  CHECK(c.docker_host == "unix:///tmp/d.sock");
  CHECK(c.log_level == "trace");
  CHECK(c.max_concurrency == 8);

  DaemonConfig untouched;
  CHECK(untouched.apply(ConfigOverrides{}).ok());
  CHECK(untouched == DaemonConfig{});

  ConfigOverrides bad_level;
  bad_level.log_level = "loud";
  CHECK(c.apply(bad_level).message() ==
        "--log-level: expected one of trace, debug, info, warn, error, off, got \"loud\"");
  ConfigOverrides bad_socket;
  bad_socket.socket = "odd.sock";
  CHECK(c.apply(bad_socket).message().starts_with("--socket: expected an absolute path"));
  ConfigOverrides bad_state;
  bad_state.state_dir = "state";
  CHECK(c.apply(bad_state).message() == "--state-dir: expected an absolute path, got \"state\"");
  ConfigOverrides bad_host;
  bad_host.docker_host = "docker.sock";
  CHECK(c.apply(bad_host).message().starts_with("--docker-host: docker host \"docker.sock\""));
  CHECK(c.socket == "/tmp/odd.sock");
}

TEST_CASE("load_effective_config reads the --config file and applies the flags") {
  TempDir dir;
  const fs::path file = dir.path() / "c.yaml";
  write_text(file, "log_level: warn\nmax_concurrency: 3\n");
  ConfigOverrides o;
  o.config = file;
  o.log_level = "error";
  auto c = load_effective_config(o);
  REQUIRE(c.has_value());
  CHECK(c->log_level == "error");
  CHECK(c->max_concurrency == 3);
  o.config = dir.path() / "missing.yaml";
  auto missing = load_effective_config(o);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kNotFound);
}

TEST_CASE("secret values are the exact bytes of their files") {
  TempDir dir;
  const std::string binary("line one\r\nline two\0tail  ", 25);
  write_text(dir.path() / "a", binary);
  write_text(dir.path() / "b", "");
  DaemonConfig c;
  c.secrets["A"] = SecretConfig{dir.path() / "a"};
  c.secrets["EMPTY"] = SecretConfig{dir.path() / "b"};
  auto values = load_secret_values(c);
  REQUIRE(values.has_value());
  CHECK(values->size() == 2);
  CHECK(values->at("A") == binary);
  CHECK(values->at("EMPTY").empty());
}

TEST_CASE("a secret that cannot be read names the secret and its file") {
  TempDir dir;
  DaemonConfig c;
  const fs::path missing = dir.path() / "nope";
  c.secrets["TESTER_ENV"] = SecretConfig{missing};
  auto values = load_secret_values(c);
  REQUIRE_FALSE(values.has_value());
  CHECK(values.error().code() == Code::kNotFound);
  CHECK(values.error().message() ==
        "secret TESTER_ENV: " + missing.native() + ": No such file or directory");

  c.secrets["TESTER_ENV"] = SecretConfig{dir.path()};
  auto directory = load_secret_values(c);
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().message() ==
        "secret TESTER_ENV: " + dir.path().native() + ": not a regular file");

  const fs::path big = dir.path() / "big";
  write_text(big, std::string(1024 * 1024 + 1, 'x'));
  c.secrets["TESTER_ENV"] = SecretConfig{big};
  auto too_big = load_secret_values(c);
  REQUIRE_FALSE(too_big.has_value());
  CHECK(too_big.error().message().starts_with("secret TESTER_ENV: " + big.native() + ": "));
}

TEST_CASE("any path is allowed when allowed_roots is unset") {
  DaemonConfig c;
  CHECK(check_allowed_path(c, "/etc/shadow", "bind mount source").ok());
}

TEST_CASE("allowed paths must lie within a root, after .. and symlinks are resolved") {
  TempDir dir;
  const fs::path root = dir.path() / "work";
  const fs::path other = dir.path() / "work2";
  fs::create_directories(root / "repo" / "sub");
  fs::create_directories(other);
  fs::create_directory_symlink(other, root / "escape");
  fs::create_directory_symlink(root / "repo", root / "inside");
  fs::create_directory_symlink(root, dir.path() / "alias");

  DaemonConfig c;
  c.allowed_roots = std::vector<fs::path>{root, "/srv/odd-never-there"};
  const auto allowed = [&](const fs::path& p) {
    return check_allowed_path(c, p, "bind mount source");
  };
  CHECK(allowed(root).ok());
  CHECK(allowed(root / "repo" / "sub").ok());
  CHECK(allowed(root / "repo" / "not-yet-created" / "x").ok());
  CHECK(allowed(root / "repo" / ".." / "repo").ok());
  CHECK(allowed(root / "inside" / "sub").ok());
  CHECK(allowed(dir.path() / "alias" / "repo").ok());
  CHECK(allowed("/srv/odd-never-there/a/b").ok());

  const Status dotdot = allowed(root / ".." / "work2");
  CHECK(dotdot.code() == Code::kPermissionDenied);
  CHECK(dotdot.message() == "bind mount source " + (root / ".." / "work2").native() +
                                " (resolves to " + other.native() +
                                ") is outside the allowed roots (" + root.native() +
                                ", /srv/odd-never-there; see allowed_roots in the daemon's "
                                "config)");
  const Status symlink = check_allowed_path(c, root / "escape" / "x", "build context");
  CHECK(symlink.code() == Code::kPermissionDenied);
  CHECK(symlink.message().starts_with("build context " + (root / "escape" / "x").native() +
                                      " (resolves to " + (other / "x").native() + ")"));
  // A sibling whose name merely starts with the root's is not inside it.
  CHECK(allowed(other).code() == Code::kPermissionDenied);
  CHECK(allowed("/etc").message().starts_with("bind mount source /etc is outside"));
  CHECK(allowed("relative/path").code() == Code::kInvalidArgument);
}

TEST_CASE("a root that is itself a symlink allows the paths it leads to") {
  TempDir dir;
  fs::create_directories(dir.path() / "real" / "x");
  fs::create_directory_symlink(dir.path() / "real", dir.path() / "link");
  DaemonConfig c;
  c.allowed_roots = std::vector<fs::path>{dir.path() / "link"};
  CHECK(check_allowed_path(c, dir.path() / "link" / "x", "build context").ok());
  CHECK(check_allowed_path(c, dir.path() / "real" / "x", "build context").ok());
  CHECK(check_allowed_path(c, dir.path(), "build context").code() == Code::kPermissionDenied);
}

TEST_CASE("etc/oddd.yaml is the documented default: it parses to exactly the defaults") {
  const fs::path file = fs::path(ODD_SOURCE_DIR) / "etc" / "oddd.yaml";
  const std::string text = read_text(file);
  REQUIRE_FALSE(text.empty());
  auto parsed = parse_config(text, file.native(), DaemonConfig{});
  REQUIRE(parsed.has_value());
  CHECK(*parsed == DaemonConfig{});
  // A file that sets something would differ from what it parses onto.
  DaemonConfig other;
  other.max_concurrency = 1;
  other.retention.days = std::chrono::days(1);
  other.limits.max_header_bytes = 2048;
  auto over_other = parse_config(text, file.native(), other);
  REQUIRE(over_other.has_value());
  CHECK(*over_other == DaemonConfig{});
  // Every key is documented, the two without a fixed default as comments.
  for (std::string_view key : {"socket", "socket_group", "state_dir", "max_concurrency",
                               "retention", "hosts", "secrets", "log_level", "default_network",
                               "stop_grace", "shutdown_grace", "limits", "build_retention"}) {
    CAPTURE(key);
    CHECK(text.find("\n" + std::string(key) + ": ") != std::string::npos);
  }
  CHECK(text.find("\n# docker_host: ") != std::string::npos);
  CHECK(text.find("\n# allowed_roots: ") != std::string::npos);
}

TEST_CASE("the commented-out examples of etc/oddd.yaml are valid once uncommented") {
  const std::string text = read_text(fs::path(ODD_SOURCE_DIR) / "etc" / "oddd.yaml");
  std::string uncommented;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("# docker_host:") || line.starts_with("# allowed_roots:") ||
        line.starts_with("#   ")) {
      line.erase(0, 2);
    }
    if (line.starts_with("hosts: {}") || line.starts_with("secrets: {}")) {
      line.erase(line.find(' ') + 1);
    }
    uncommented += line;
    uncommented += '\n';
  }
  auto parsed = parse_config(uncommented, "example", DaemonConfig{});
  REQUIRE(parsed.has_value());
  CHECK(parsed->allowed_roots.has_value());
  CHECK(parsed->hosts.at("tester1").identity == fs::path("/etc/odd/keys/tester1"));
  CHECK(parsed->secrets.at("TESTER_ENV").file == "/etc/odd/secrets/tester.env");
}

}  // namespace
}  // namespace odd::daemon
