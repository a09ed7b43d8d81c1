#include "daemon/ssh_docker_dialer.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "sshx/channel_stream.hpp"

namespace odd::daemon {

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kDialTimeout{30};
constexpr std::string_view kDialStdio = "docker system dial-stdio";

class SshConnection final : public engine::Connection {
 public:
  SshConnection(sshx::Lease lease, sshx::ChannelStream stream)
      : lease_(std::move(lease)), stream_(std::move(stream)) {}

  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(
      asio::mutable_buffer buffer) override {
    co_return co_await stream_.read_some(buffer);
  }
  asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer buffer) override {
    std::size_t done = 0;
    while (done < buffer.size()) {
      auto [ec, n] = co_await stream_.write_some(buffer + done);
      if (ec) co_return std::tuple(ec, done);
      done += n;
    }
    co_return std::tuple(error_code(), done);
  }
  void shutdown_send() override { stream_.shutdown_send(); }
  void close() override { stream_.close(); }
  bool is_open() const override { return stream_.is_open(); }

 private:
  sshx::Lease lease_;
  sshx::ChannelStream stream_;
};

class SshDockerDialer final : public engine::Dialer {
 public:
  explicit SshDockerDialer(std::shared_ptr<sshx::Pool> pool)
      : pool_(std::move(pool)),
        name_("ssh://" + pool_->session_options().user + "@" +
              sshx::describe_host(pool_->session_options())) {}

  asio::awaitable<Result<std::unique_ptr<engine::Connection>>> dial() override {
    auto lease = co_await pool_->acquire(Clock::now() + kDialTimeout);
    if (!lease) co_return lease.error();
    auto stream = co_await sshx::ChannelStream::open_exec(lease->session(), std::string(kDialStdio),
                                                          Clock::now() + kDialTimeout);
    if (!stream) co_return stream.error().with_context("opening a dockerd tunnel");
    co_return std::make_unique<SshConnection>(std::move(*lease), std::move(*stream));
  }
  std::string describe() const override { return name_; }

 private:
  std::shared_ptr<sshx::Pool> pool_;
  std::string name_;
};

}  // namespace

std::unique_ptr<engine::Dialer> make_ssh_docker_dialer(std::shared_ptr<sshx::Pool> pool) {
  return std::make_unique<SshDockerDialer>(std::move(pool));
}

}  // namespace odd::daemon
