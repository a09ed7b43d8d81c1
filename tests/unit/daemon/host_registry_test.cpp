#include "daemon/host_registry.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

namespace odd::daemon {
namespace {

class NamedHost final : public RemoteHost {
 public:
  NamedHost(std::string name, HostConfig config, int* alive)
      : name_(std::move(name)), config_(std::move(config)), alive_(alive) {
    ++*alive_;
  }
  ~NamedHost() override { --*alive_; }
  asio::awaitable<Result<RemoteExit>> exec(
      const RemoteCommand&, std::function<void(OutputStream, std::string_view)>) override {
    co_return RemoteExit{};
  }
  asio::awaitable<Result<RemoteTransfer>> upload(const std::filesystem::path&, const std::string&,
                                                 std::optional<unsigned>) override {
    co_return RemoteTransfer{};
  }
  asio::awaitable<Status> upload_content(std::string_view, const std::string&, unsigned) override {
    co_return ok_status();
  }
  asio::awaitable<Result<RemoteTransfer>> download(const std::string&, const std::filesystem::path&,
                                                   const std::string&) override {
    co_return RemoteTransfer{};
  }
  RemoteHostHealth health() const override { return {"idle", 0, 0, name_ + "@" + config_.address}; }

 private:
  std::string name_;
  HostConfig config_;
  int* alive_;
};

HostConfig host_at(std::string address) {
  HostConfig config;
  config.address = std::move(address);
  config.user = "xplg";
  config.agent = true;
  config.known_hosts = "/etc/odd/known_hosts";
  return config;
}

using Hosts = std::map<std::string, HostConfig, std::less<>>;

}  // namespace

TEST_CASE("a reload adds new hosts, replaces changed ones, drops removed ones and keeps the rest") {
  int alive = 0;
  std::vector<std::string> made;
  HostRegistry registry([&](const std::string& name, const HostConfig& config) {
    made.push_back(name);
    return std::make_unique<NamedHost>(name, config, &alive);
  });
  auto first = registry.configure(
      Hosts{{"tester1", host_at("10.0.0.85")}, {"tester2", host_at("10.0.0.86")}});
  CHECK(first.added == std::vector<std::string>{"tester1", "tester2"});
  CHECK(registry.names() == std::vector<std::string>{"tester1", "tester2"});
  REQUIRE(registry.config("tester1") != nullptr);
  CHECK(registry.config("tester1")->address == "10.0.0.85");
  CHECK(registry.find("local") == nullptr);
  CHECK(registry.config("tester9") == nullptr);

  const std::shared_ptr<RemoteHost> kept = registry.find("tester1");
  const std::shared_ptr<RemoteHost> running = registry.find("tester2");  // a step still uses it
  auto second = registry.configure(Hosts{{"tester1", host_at("10.0.0.85")},
                                         {"tester2", host_at("10.0.0.99")},
                                         {"tester3", host_at("10.0.0.87")}});
  CHECK(second.added == std::vector<std::string>{"tester3"});
  CHECK(second.replaced == std::vector<std::string>{"tester2"});
  CHECK(second.removed.empty());
  CHECK(registry.find("tester1") == kept);
  CHECK(registry.find("tester2") != running);
  CHECK(registry.find("tester2")->health().error == "tester2@10.0.0.99");
  CHECK(running->health().error == "tester2@10.0.0.86");
  CHECK(alive == 4);

  auto third = registry.configure(Hosts{{"tester3", host_at("10.0.0.87")}});
  CHECK(third.removed == std::vector<std::string>{"tester1", "tester2"});
  CHECK(registry.names() == std::vector<std::string>{"tester3"});
  CHECK(made == std::vector<std::string>{"tester1", "tester2", "tester2", "tester3"});
  CHECK(alive == 3);  // kept and running are still held here
}

}  // namespace odd::daemon
