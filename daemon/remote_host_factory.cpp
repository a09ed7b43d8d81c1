#include "daemon/remote_host_factory.hpp"

namespace odd::daemon {

namespace {

// Until oddd is built with SSH support: a host that exists in the config, reports its state and
// refuses every operation with unavailable naming it.
class UnbuiltRemoteHost final : public RemoteHost {
 public:
  explicit UnbuiltRemoteHost(const std::string& name)
      : error_("host " + name + ": SSH support is not built in yet") {}

  asio::awaitable<Result<RemoteExit>> exec(
      const RemoteCommand&, std::function<void(OutputStream, std::string_view)>) override {
    co_return refuse();
  }
  asio::awaitable<Result<RemoteTransfer>> upload(const std::filesystem::path&, const std::string&,
                                                 std::optional<unsigned>) override {
    co_return refuse();
  }
  asio::awaitable<Status> upload_content(std::string_view, const std::string&, unsigned) override {
    co_return refuse();
  }
  asio::awaitable<Result<RemoteTransfer>> download(const std::string&, const std::filesystem::path&,
                                                   const std::string&) override {
    co_return refuse();
  }

  RemoteHostHealth health() const override {
    RemoteHostHealth health;
    health.state = tried_ ? "failing" : "idle";
    if (tried_) health.error = error_;
    return health;
  }

 private:
  Status refuse() {
    tried_ = true;
    return unavailable(error_);
  }

  std::string error_;
  bool tried_ = false;
};

}  // namespace

std::unique_ptr<RemoteHost> make_remote_host(const std::string& name, const HostConfig&) {
  return std::make_unique<UnbuiltRemoteHost>(name);
}

}  // namespace odd::daemon
