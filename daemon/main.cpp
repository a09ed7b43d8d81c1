// oddd: the odd daemon. Reads its configuration, opens the state dir, connects to dockerd, serves
// the control socket and runs what is submitted until SIGTERM or SIGINT, which cancel every run,
// wait for container cleanup and exit; SIGHUP reloads hosts, secrets and limits. It never forks
// into the background.

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <map>
#include <random>
#include <set>

#include "common/clock.hpp"
#include "common/logging.hpp"
#include "daemon/config.hpp"
#include "daemon/control_server.hpp"
#include "daemon/docker_engine.hpp"
#include "daemon/host_registry.hpp"
#include "daemon/log_hub.hpp"
#include "daemon/run_manager.hpp"
#include "daemon/run_store.hpp"
#include "daemon/ssh_host.hpp"
#include "engine/docker_client.hpp"
#include "engine/image_builder.hpp"
#include "sshx/ctr_provider.hpp"

namespace {

namespace asio = boost::asio;
using namespace odd;
using namespace odd::daemon;
using SecretValues = std::map<std::string, std::string, std::less<>>;

constexpr const char* kVersion = "0.1.0";

int fail(const std::string& message) {
  std::fprintf(stderr, "oddd: %s\n", message.c_str());
  return 1;
}

proto::TemplateValues template_values(const std::map<std::string, std::string, std::less<>>& from) {
  proto::TemplateValues values;
  for (const auto& [name, value] : from) values[name] = value;
  return values;
}

void log_host_changes(const HostRegistry::Changes& changes) {
  for (const auto& name : changes.added) spdlog::info("host {}: added", name);
  for (const auto& name : changes.replaced) {
    spdlog::info("host {}: config changed; running steps finish on the old connection", name);
  }
  for (const auto& name : changes.removed) spdlog::info("host {}: removed", name);
}

void warn_unconfigured_uploads(const DaemonConfig& config) {
  std::set<std::string> configured;
  for (const auto& [name, host] : config.hosts) configured.insert(name);
  const std::filesystem::path dir = config.state_dir / "uploads";
  for (const auto& [name, notes] : unconfigured_uploads(dir, configured)) {
    spdlog::warn(
        "host {}: {} cut-off upload(s) may have left temporary files (.*.odd-tmp-*) there; oddd "
        "removes them once the config names the host again (notes in {}; delete them to forget)",
        name, notes, (dir / name).native());
  }
}

// SSH's cipher provider is installed once the config names a host, not before: installing it
// pages in OpenSSL's provider machinery, 2.2 MiB of the idle RSS of a daemon that may never use
// SSH. Its failure is reported once.
void prepare_ssh(const DaemonConfig& config) {
  static bool reported = false;
  if (config.hosts.empty() || reported) return;
  reported = true;
  if (const std::string why = sshx::install_ctr_provider(); !why.empty()) {
    spdlog::warn("SSH uses OpenSSL's AES-128-CTR 16 bytes per call, which slows transfers: {}",
                 why);
  }
}

// SIGHUP (DESIGN §10): hosts, secrets and limits are taken from the file again; anything wrong
// in it keeps the running config whole.
void reload(const ConfigOverrides& overrides, DaemonConfig& current, HostRegistry& hosts,
            RunManager& manager, ControlServer& server, SecretValues& secret_values) {
  auto config = load_effective_config(overrides);
  if (!config) {
    spdlog::error("SIGHUP: keeping the running config: {}", config.error().message());
    return;
  }
  auto secrets = load_secret_values(*config);
  if (!secrets) {
    spdlog::error("SIGHUP: keeping the running config: {}", secrets.error().message());
    return;
  }
  DaemonConfig kept = *config;
  kept.hosts = current.hosts;
  kept.secrets = current.secrets;
  kept.limits = current.limits;
  if (!(kept == current)) {
    spdlog::warn(
        "SIGHUP: only hosts, secrets and limits are reloaded; restart oddd for the other "
        "changes");
  }
  secret_values = *secrets;
  prepare_ssh(*config);
  log_host_changes(hosts.configure(config->hosts));
  warn_unconfigured_uploads(*config);
  manager.set_secrets(template_values(*secrets));
  server.set_limits(config->limits.max_connections, config->limits.max_header_bytes,
                    config->limits.max_request_bytes);
  current.hosts = config->hosts;
  current.secrets = config->secrets;
  current.limits = config->limits;
  spdlog::info("SIGHUP: reloaded {} host(s), {} secret(s) and the limits", current.hosts.size(),
               secrets->size());
}

int serve(const DaemonConfig& config, const ConfigOverrides& overrides,
          const std::string& config_path) {
  asio::io_context io(1);
  asio::thread_pool blocking(2);

  auto store = RunStore::open(config.state_dir);
  if (!store) return fail(store.error().message());
  auto secrets = load_secret_values(config);
  if (!secrets) return fail(secrets.error().message());

  auto docker = engine::DockerClient::for_host(io.get_executor(), config.docker_host);
  if (!docker) return fail("docker_host: " + docker.error().message());
  engine::ImageBuilder builder(**docker, blocking.get_executor(),
                               config.state_dir / "build-digests");
  DockerEngine local(**docker, builder, DockerEngineOptions{});

  SecretValues secret_values = *secrets;
  std::map<std::string, std::shared_ptr<UploadJournal>> upload_journals;
  HostRegistry hosts(
      [&io, &blocking, &secret_values, &upload_journals, state_dir = config.state_dir](
          const std::string& name, const HostConfig& host) {
        std::optional<std::string> passphrase;
        if (host.passphrase_secret) {
          const auto it = secret_values.find(*host.passphrase_secret);
          if (it != secret_values.end()) passphrase = it->second;
        }
        std::shared_ptr<UploadJournal>& journal = upload_journals[name];
        if (journal == nullptr) {
          journal = std::make_shared<UploadJournal>(state_dir / "uploads" / name);
        }
        return make_ssh_host(io.get_executor(), blocking.get_executor(), name, host,
                             std::move(passphrase), state_dir, journal);
      });
  prepare_ssh(config);
  log_host_changes(hosts.configure(config.hosts));
  warn_unconfigured_uploads(config);
  DaemonConfig current = config;

  SystemClock clock;
  LogHub hub;
  SchedulerEnv env;
  env.clock = &clock;
  env.engine_for = [&local, &hosts](const std::string& host) -> ContainerEngine* {
    if (host == "local") return &local;
    auto remote = hosts.find(host);
    return remote ? remote->container_engine() : nullptr;
  };
  env.remote_for = [&hosts](const std::string& host) { return hosts.find(host); };
  env.check_path = [&config](const std::filesystem::path& path, std::string_view what) {
    return check_allowed_path(config, path, what);
  };
  env.cache_dir = [&store](const std::string& name) { return (*store)->cache_dir(name); };
  env.instance_id = (*store)->instance_id();
  env.default_network = config.default_network;
  env.stop_grace = std::chrono::duration_cast<std::chrono::seconds>(config.stop_grace);
  env.random = [engine = std::mt19937_64(std::random_device{}())]() mutable {
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
  };

  RunManagerOptions options;
  options.daemon_version = kVersion;
  options.max_concurrency = static_cast<std::size_t>(config.max_concurrency);
  options.retention = config.retention;
  options.shutdown_grace = std::chrono::duration_cast<std::chrono::seconds>(config.shutdown_grace);
  options.hosts = &hosts;
  options.secrets = template_values(*secrets);
  RunManager manager(io.get_executor(), **store, hub, env, docker->get(), options);

  ControlServerOptions server_options;
  server_options.socket_path = config.socket.string();
  server_options.socket_group = config.socket_group;
  server_options.max_connections = config.limits.max_connections;
  server_options.max_body_bytes = config.limits.max_request_bytes;
  server_options.max_header_bytes = config.limits.max_header_bytes;
  ControlServer server(io.get_executor(), manager, server_options);
  if (Status listening = server.listen(); !listening.ok()) return fail(listening.message());

  if (!config.allowed_roots) {
    spdlog::warn("allowed_roots is not set: bind mounts and build contexts may use any path");
  }
  spdlog::info("oddd {} listening on {} (state {}, docker {}, config {})", kVersion,
               config.socket.string(), config.state_dir.string(), config.docker_host, config_path);

  bool stopping = false;
  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int number) {
      if (ec) return;
      if (number == SIGHUP) {
        reload(overrides, current, hosts, manager, server, secret_values);
        wait_signal();
        return;
      }
      if (stopping) {
        spdlog::warn("signal {} again: still waiting for runs to clean up", number);
        wait_signal();
        return;
      }
      stopping = true;
      spdlog::info("signal {}: cancelling {} run(s) and stopping", number, manager.active_runs());
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            co_await manager.shutdown();
            server.stop();
            hosts.configure({});
          },
          asio::detached);
      wait_signal();
    });
  };
  wait_signal();

  asio::co_spawn(io, manager.reconcile(), asio::detached);
  asio::co_spawn(io, server.run(), [&](std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::error("control server: {}", e.what());
      }
    }
    signals.cancel();
  });
  io.run();
  blocking.join();
  spdlog::info("oddd stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"oddd: the odd daemon (test orchestration over dockerd and SSH)", "oddd"};
  ConfigOverrides overrides;
  std::string config_path = "/etc/odd/oddd.yaml";
  std::string socket, state_dir, docker_host, log_level;
  bool show_version = false;
  auto* config_option =
      app.add_option("--config", config_path, "configuration file (default /etc/odd/oddd.yaml)");
  app.add_option("--socket", socket, "control socket path");
  app.add_option("--state-dir", state_dir, "state directory");
  app.add_option("--docker-host", docker_host, "dockerd address (unix:///... or tcp://host:port)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off");
  app.add_flag("--version", show_version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (show_version) {
    std::printf("oddd %s\n", kVersion);
    return 0;
  }
  if (config_option->count() > 0) overrides.config = config_path;
  if (!socket.empty()) overrides.socket = socket;
  if (!state_dir.empty()) overrides.state_dir = state_dir;
  if (!docker_host.empty()) overrides.docker_host = docker_host;
  if (!log_level.empty()) overrides.log_level = log_level;

  auto config = load_effective_config(overrides);
  if (!config) return fail(config.error().message());
  if (Status logging = init_logging(config->log_level); !logging.ok()) {
    return fail("log_level: " + logging.message());
  }
  // A client that goes away mid-response must not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  return serve(*config, overrides, config_path);
}
