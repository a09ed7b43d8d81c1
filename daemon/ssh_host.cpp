#include "daemon/ssh_host.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "daemon/docker_engine.hpp"
#include "daemon/ssh_docker_dialer.hpp"
#include "daemon/upload_journal.hpp"
#include "engine/docker_client.hpp"
#include "engine/image_builder.hpp"
#include "sshx/exec.hpp"
#include "sshx/sftp.hpp"

namespace odd::daemon {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kAcquireTimeout{120};
constexpr sshx::Millis kSweepTimeout{60'000};

sshx::Deadline acquire_deadline() { return Clock::now() + kAcquireTimeout; }

class SshHost final : public RemoteHost {
 public:
  SshHost(asio::any_io_executor executor, asio::any_io_executor blocking, const std::string& name,
          const HostConfig& config, std::optional<std::string> passphrase,
          const std::filesystem::path& state_dir, std::shared_ptr<UploadJournal> uploads)
      : name_(name),
        pool_(sshx::Pool::create(executor, session_options_for(name, config, std::move(passphrase)),
                                 pool_options_for(config))),
        journal_(std::move(uploads)) {
    if (config.docker) {
      engine::DockerClientOptions options;
      options.http.close_idle = true;  // else an idle connection keeps its session for good
      client_ =
          std::make_unique<engine::DockerClient>(executor, make_ssh_docker_dialer(pool_), options);
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
    auto tag = note_upload(dest);
    if (!tag) co_return tag.error();
    const sshx::TransferOptions options = tagged(*tag);
    auto sent = co_await sshx::upload(lease->session(), source, dest, mode, options);
    upload_finished(*lease, *tag);
    if (!sent) co_return sent.error();
    co_return RemoteTransfer{sent->files, sent->bytes};
  }

  asio::awaitable<Status> upload_content(std::string_view content, const std::string& dest,
                                         unsigned mode) override {
    auto lease = co_await acquire();
    if (!lease) co_return lease.error();
    auto tag = note_upload(dest);
    if (!tag) co_return tag.error();
    const sshx::TransferOptions options = tagged(*tag);
    Status sent = co_await sshx::upload_content(lease->session(), content, dest, mode, options);
    upload_finished(*lease, *tag);
    co_return sent;
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

  asio::awaitable<void> remove_left_behind() override {
    std::vector<std::string> unreadable;
    const bool left_behind = journal_->has_left_behind(&unreadable);
    report_unreadable(unreadable);
    if (!left_behind) co_return;
    auto lease = co_await acquire();
    if (!lease) {
      spdlog::warn("host {}: removing what cut-off uploads left behind: {}", name_,
                   lease.error().message());
    }
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
  // connection or by the death of an earlier daemon left behind are first removed.
  asio::awaitable<Result<sshx::Lease>> acquire() {
    auto lease = co_await pool_->acquire(acquire_deadline());
    if (!lease) co_return lease;
    std::vector<std::string> unreadable;
    const bool left_behind = journal_->has_left_behind(&unreadable);
    report_unreadable(unreadable);
    if (!left_behind) co_return lease;
    co_await sweep(lease->session());
    if (lease->session()->usable()) co_return lease;
    *lease = sshx::Lease();
    co_return co_await pool_->acquire(acquire_deadline());
  }

  // Removes the temporaries of the uploads waiting for a sweep. Those the connection broke or a
  // cancel interrupted wait for the next; others that fail are reported and given up.
  asio::awaitable<void> sweep(std::shared_ptr<sshx::Session> session) {
    std::vector<UploadJournal::Upload> uploads = journal_->take_left_behind();
    for (std::size_t i = 0; i < uploads.size(); ++i) {
      const UploadJournal::Upload& upload = uploads[i];
      sshx::TransferOptions options;
      options.timeout = kSweepTimeout;
      auto removed = co_await sshx::remove_temporaries(session, upload.dest, upload.tag, options);
      if (removed) {
        spdlog::info("host {}: removed {} temporary file(s) left behind by a cut-off upload to {}",
                     name_, *removed, upload.dest);
      } else {
        spdlog::warn("host {}: removing what a cut-off upload to {} left behind: {}", name_,
                     upload.dest, removed.error().message());
        const Code code = removed.error().code();
        if (code == Code::kCancelled || (code == Code::kUnavailable && !session->usable())) {
          uploads.erase(uploads.begin(), uploads.begin() + static_cast<std::ptrdiff_t>(i));
          journal_->put_back(std::move(uploads));
          co_return;
        }
      }
      if (Status forgot = journal_->swept(upload.tag); !forgot.ok()) {
        spdlog::warn("host {}: {}", name_, forgot.message());
      }
      if (!session->usable()) {
        uploads.erase(uploads.begin(), uploads.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        journal_->put_back(std::move(uploads));
        co_return;
      }
    }
  }

  Result<std::string> note_upload(const std::string& dest) {
    auto tag = journal_->begin(dest);
    if (!tag) return tag.error().with_context("host " + name_ + ": noting an upload to " + dest);
    return tag;
  }

  void upload_finished(const sshx::Lease& lease, const std::string& tag) {
    if (Status noted = journal_->finish(tag, lease.session()->usable()); !noted.ok()) {
      spdlog::warn("host {}: {}", name_, noted.message());
    }
  }

  void report_unreadable(const std::vector<std::string>& unreadable) const {
    for (const std::string& problem : unreadable) {
      spdlog::warn("host {}: skipping an upload note: {}", name_, problem);
    }
  }

  static sshx::TransferOptions tagged(std::string tag) {
    sshx::TransferOptions options;
    options.tag = std::move(tag);
    return options;
  }

  std::string name_;
  std::shared_ptr<sshx::Pool> pool_;
  std::shared_ptr<UploadJournal> journal_;
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
                                          const std::filesystem::path& state_dir,
                                          std::shared_ptr<UploadJournal> uploads) {
  return std::make_unique<SshHost>(std::move(executor), std::move(blocking), name, config,
                                   std::move(passphrase), state_dir, std::move(uploads));
}

}  // namespace odd::daemon
