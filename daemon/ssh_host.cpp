#include "daemon/ssh_host.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "daemon/docker_engine.hpp"
#include "daemon/ssh_docker_dialer.hpp"
#include "engine/docker_client.hpp"
#include "engine/image_builder.hpp"
#include "sshx/exec.hpp"
#include "sshx/sftp.hpp"

namespace odd::daemon {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kAcquireTimeout{120};

sshx::Deadline acquire_deadline() { return Clock::now() + kAcquireTimeout; }

class SshHost final : public RemoteHost {
 public:
  SshHost(asio::any_io_executor executor, asio::any_io_executor blocking, const std::string& name,
          const HostConfig& config, std::optional<std::string> passphrase,
          const std::filesystem::path& state_dir)
      : pool_(sshx::Pool::create(executor, session_options_for(name, config, std::move(passphrase)),
                                 pool_options_for(config))) {
    if (config.docker) {
      client_ = std::make_unique<engine::DockerClient>(executor, make_ssh_docker_dialer(pool_));
      builder_ = std::make_unique<engine::ImageBuilder>(*client_, blocking,
                                                        state_dir / "build-digests" / name);
      engine_ = std::make_unique<DockerEngine>(*client_, *builder_, DockerEngineOptions{});
    }
  }
  ~SshHost() override {
    engine_.reset();
    builder_.reset();
    client_.reset();
    pool_->close();
  }

  asio::awaitable<Result<RemoteExit>> exec(
      const RemoteCommand& command,
      std::function<void(OutputStream, std::string_view)> on_output) override {
    auto lease = co_await acquire();
    if (!lease) co_return lease.error();
    sshx::ExecRequest request;
    request.command = command.command;
    request.env = command.env;
    auto ran = co_await sshx::exec(lease->session(), std::move(request),
                                   [&on_output](sshx::ExecStream stream, std::string_view bytes) {
                                     if (on_output) {
                                       on_output(stream == sshx::ExecStream::kStdout
                                                     ? OutputStream::kStdout
                                                     : OutputStream::kStderr,
                                                 bytes);
                                     }
                                   });
    if (!ran) co_return ran.error();
    co_return RemoteExit{ran->exit_code, ran->exit_signal};
  }

  asio::awaitable<Result<RemoteTransfer>> upload(const std::filesystem::path& source,
                                                 const std::string& dest,
                                                 std::optional<unsigned> mode) override {
    auto lease = co_await acquire();
    if (!lease) co_return lease.error();
    auto sent = co_await sshx::upload(lease->session(), source, dest, mode, transfer_options());
    if (!sent) co_return sent.error();
    co_return RemoteTransfer{sent->files, sent->bytes};
  }

  asio::awaitable<Status> upload_content(std::string_view content, const std::string& dest,
                                         unsigned mode) override {
    auto lease = co_await acquire();
    if (!lease) co_return lease.error();
    co_return co_await sshx::upload_content(lease->session(), content, dest, mode,
                                            transfer_options());
  }

  asio::awaitable<Result<RemoteTransfer>> download(const std::string& source,
                                                   const std::filesystem::path& local_root,
                                                   const std::string& dest) override {
    auto lease = co_await acquire();
    if (!lease) co_return lease.error();
    auto got = co_await sshx::download(lease->session(), source, local_root, dest);
    if (!got) co_return got.error();
    co_return RemoteTransfer{got->files, got->bytes};
  }

  RemoteHostHealth health() const override {
    const sshx::PoolState state = pool_->state();
    RemoteHostHealth health;
    switch (state.kind) {
      case sshx::PoolState::Kind::kIdle:
        health.state = "idle";
        break;
      case sshx::PoolState::Kind::kConnected:
        health.state = "connected";
        break;
      case sshx::PoolState::Kind::kFailing:
        health.state = "failing";
        break;
    }
    health.sessions = state.sessions;
    health.in_use = state.leases;
    health.error = state.error;
    return health;
  }

  ContainerEngine* container_engine() override { return engine_.get(); }

 private:
  // A lease from the pool, on whose session the temporary files that uploads cut off by a broken
  // connection left behind are first removed.
  asio::awaitable<Result<sshx::Lease>> acquire() {
    auto lease = co_await pool_->acquire(acquire_deadline());
    if (!lease || left_behind_.empty()) co_return lease;
    std::vector<std::string> paths = std::exchange(left_behind_, {});
    Status removed = co_await sshx::remove_files(lease->session(), paths);
    if (!removed.ok()) {
      spdlog::warn("removing what a cut-off upload left behind: {}", removed.message());
      if (!lease->session()->usable()) {
        left_behind_.insert(left_behind_.end(), paths.begin(), paths.end());
      }
    }
    co_return lease;
  }

  sshx::TransferOptions transfer_options() {
    sshx::TransferOptions options;
    options.left_behind = [this](std::string path) { left_behind_.push_back(std::move(path)); };
    return options;
  }

  std::shared_ptr<sshx::Pool> pool_;
  std::vector<std::string> left_behind_;
  std::unique_ptr<engine::DockerClient> client_;
  std::unique_ptr<engine::ImageBuilder> builder_;
  std::unique_ptr<DockerEngine> engine_;
};

}  // namespace

sshx::PoolOptions pool_options_for(const HostConfig& config) {
  sshx::PoolOptions options;
  options.max_sessions = kMaxConnectionsPerHost;
  options.channels_per_session = std::max(1, config.max_sessions / 2);
  return options;
}

sshx::SessionOptions session_options_for(const std::string& name, const HostConfig& config,
                                         std::optional<std::string> passphrase) {
  sshx::SessionOptions options;
  options.name = name;
  options.address = config.address;
  options.port = config.port;
  options.user = config.user;
  options.identity = config.identity;
  options.agent = config.agent;
  options.known_hosts = config.known_hosts;
  options.passphrase = std::move(passphrase);
  return options;
}

std::unique_ptr<RemoteHost> make_ssh_host(asio::any_io_executor executor,
                                          asio::any_io_executor blocking, const std::string& name,
                                          const HostConfig& config,
                                          std::optional<std::string> passphrase,
                                          const std::filesystem::path& state_dir) {
  return std::make_unique<SshHost>(std::move(executor), std::move(blocking), name, config,
                                   std::move(passphrase), state_dir);
}

}  // namespace odd::daemon
