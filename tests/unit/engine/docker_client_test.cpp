// DockerClient against a scripted in-process dockerd: the request each method sends, how answers
// and faults (a stream cut mid-line, a dropped connection, a silent registry) come back. The
// real-dockerd behaviour is covered by the integration tests; these pin down what a real one
// cannot be made to do on demand.
#include "engine/docker_client.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace odd::engine {
namespace {

using nlohmann::json;

struct Request {
  std::string method;
  std::string target;
  std::string body;
};

// What the fake dockerd sends back: `pieces` arrive as separate reads; then the connection
// either ends (eof) or stays silent until the client closes it.
struct Reply {
  std::vector<std::string> pieces;
  bool eof_after = false;
};

Reply full_reply(unsigned status, const std::string& body) {
  return {{"HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body}};
}

enum class End { kComplete, kBreak, kSilent };

// A chunked response whose chunks each arrive in a read of their own.
Reply chunked_reply(unsigned status, const std::vector<std::string>& chunks, End end) {
  Reply reply;
  reply.pieces.push_back(
      "HTTP/1.1 " + std::to_string(status) +
      " X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (const auto& chunk : chunks) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    reply.pieces.push_back(size + chunk + "\r\n");
  }
  if (end == End::kComplete) reply.pieces.push_back("0\r\n\r\n");
  reply.eof_after = end == End::kBreak;
  return reply;
}

struct FakeDockerd {
  std::function<Reply(const Request&)> handler;
  std::vector<Request> requests;
  int refuse_dials = 0;  // the next N dials fail as if dockerd were down
  int dials = 0;

  std::vector<std::string> targets() const {
    std::vector<std::string> out;
    for (const auto& r : requests) out.push_back(r.target);
    return out;
  }
};

class FakeConnection final : public Connection {
 public:
  FakeConnection(asio::any_io_executor ex, FakeDockerd& server)
      : server_(server), wakeup_(ex, asio::steady_timer::time_point::max()) {}

  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(
      asio::mutable_buffer buffer) override {
    for (;;) {
      if (closed_) co_return std::make_tuple(error_code(asio::error::operation_aborted), 0);
      if (!pieces_.empty()) {
        std::string& front = pieces_.front();
        std::size_t n = std::min(front.size(), buffer.size());
        std::memcpy(buffer.data(), front.data(), n);
        front.erase(0, n);
        if (front.empty()) pieces_.pop_front();
        co_return std::make_tuple(error_code(), n);
      }
      if (eof_) co_return std::make_tuple(error_code(asio::error::eof), 0);
      woken_ = false;
      auto [ec] = co_await wakeup_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec && !woken_) co_return std::make_tuple(ec, 0);
    }
  }

  asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer buffer) override {
    if (closed_) co_return std::make_tuple(error_code(asio::error::broken_pipe), 0);
    in_.append(static_cast<const char*>(buffer.data()), buffer.size());
    serve();
    co_return std::make_tuple(error_code(), buffer.size());
  }

  void shutdown_send() override {}
  void close() override {
    closed_ = true;
    wakeup_.cancel();
  }
  bool is_open() const override { return !closed_; }

 private:
  // Answers every complete request in `in_` (head plus a Content-Length body).
  void serve() {
    for (;;) {
      auto head_end = in_.find("\r\n\r\n");
      if (head_end == std::string::npos) return;
      std::string head = in_.substr(0, head_end);
      std::size_t length = 0;
      if (auto at = head.find("Content-Length: "); at != std::string::npos) {
        length = std::stoul(head.substr(at + 16));
      }
      if (in_.size() < head_end + 4 + length) return;
      Request request;
      auto sp1 = head.find(' ');
      auto sp2 = head.find(' ', sp1 + 1);
      request.method = head.substr(0, sp1);
      request.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
      request.body = in_.substr(head_end + 4, length);
      in_.erase(0, head_end + 4 + length);
      server_.requests.push_back(request);
      Reply reply = server_.handler(request);
      for (auto& piece : reply.pieces) pieces_.push_back(std::move(piece));
      eof_ = eof_ || reply.eof_after;
      woken_ = true;
      wakeup_.cancel();
    }
  }

  FakeDockerd& server_;
  asio::steady_timer wakeup_;
  std::string in_;
  std::deque<std::string> pieces_;
  bool eof_ = false;
  bool closed_ = false;
  bool woken_ = false;
};

class FakeDialer final : public Dialer {
 public:
  FakeDialer(asio::any_io_executor ex, FakeDockerd& server) : ex_(std::move(ex)), server_(server) {}

  asio::awaitable<Result<std::unique_ptr<Connection>>> dial() override {
    ++server_.dials;
    if (server_.refuse_dials > 0) {
      --server_.refuse_dials;
      co_return unavailable("no dockerd listening on fake");
    }
    co_return std::unique_ptr<Connection>(std::make_unique<FakeConnection>(ex_, server_));
  }
  std::string describe() const override { return "unix:///fake.sock"; }

 private:
  asio::any_io_executor ex_;
  FakeDockerd& server_;
};

// Runs the coroutine `make(client)` to completion on a fresh io_context. `make` must be a
// coroutine itself: DockerClient's awaitables are lazy, so a temporary argument passed by a plain
// function would be gone before they run.
template <class Make>
auto run(FakeDockerd& server, Make make) {
  asio::io_context io;
  DockerClient client(io.get_executor(), std::make_unique<FakeDialer>(io.get_executor(), server));
  using T = typename decltype(make(client))::value_type;
  std::optional<T> out;
  asio::co_spawn(io, make(client), [&](std::exception_ptr e, T value) {
    if (e) std::rethrow_exception(e);
    out.emplace(std::move(value));
  });
  io.run();
  REQUIRE(out.has_value());
  return std::move(*out);
}

std::string version_body(const std::string& api) {
  return json{{"Version", "20.10.24"}, {"ApiVersion", api}, {"MinAPIVersion", "1.12"}}.dump();
}

// Answers /version with `api` and everything else through `rest`.
std::function<Reply(const Request&)> dockerd(std::string api,
                                             std::function<Reply(const Request&)> rest) {
  return [api = std::move(api), rest = std::move(rest)](const Request& r) {
    if (r.target == "/version") return full_reply(200, version_body(api));
    return rest(r);
  };
}

const std::string kId = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";

std::string event_line(const std::string& action, const std::string& id, std::int64_t t) {
  return json{{"Type", "container"},
              {"Action", action},
              {"Actor", {{"ID", id}, {"Attributes", {{"name", id}}}}},
              {"timeNano", t}}
             .dump() +
         "\n";
}

TEST_SUITE("engine/docker_client") {
  TEST_CASE("the API version is negotiated once and prefixes every later path") {
    FakeDockerd server;
    server.handler = dockerd("1.45", [](const Request&) { return full_reply(204, ""); });
    Status s = run(server, [](DockerClient& c) -> asio::awaitable<Status> {
      Status first = co_await c.start_container("odd-x");
      if (!first.ok()) co_return first;
      co_return co_await c.start_container("odd-y");
    });
    CHECK(s.ok());
    CHECK(server.targets() == std::vector<std::string>{"/version", "/v1.43/containers/odd-x/start",
                                                       "/v1.43/containers/odd-y/start"});
  }

  TEST_CASE("an old dockerd fails every call with failed_precondition and sends nothing else") {
    FakeDockerd server;
    server.handler = dockerd("1.40", [](const Request&) { return full_reply(204, ""); });
    Status s = run(server, [](DockerClient& c) -> asio::awaitable<Status> {
      co_return co_await c.start_container("odd-x");
    });
    CHECK(s.code() == Code::kFailedPrecondition);
    CHECK(s.message() ==
          "start container odd-x: dockerd at unix:///fake.sock speaks Engine API 1.40; odd needs "
          "1.41 or newer (Docker 20.10+)");
    CHECK(server.requests.size() == 1);
  }

  TEST_CASE("a 304 from start or stop means already done") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) { return full_reply(304, ""); });
    Status s = run(server, [](DockerClient& c) -> asio::awaitable<Status> {
      Status started = co_await c.start_container("x");
      if (!started.ok()) co_return started;
      co_return co_await c.stop_container("x", std::chrono::seconds(3));
    });
    CHECK(s.ok());
    CHECK(server.requests.back().target == "/v1.41/containers/x/stop?t=3");
  }

  TEST_CASE("errors name the operation and the short id, in dockerd's words") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return full_reply(404, R"({"message":"No such container: )" + kId + R"("})");
    });
    Status s = run(server, [](DockerClient& c) -> asio::awaitable<Status> {
      co_return co_await c.remove_container(kId, true, false);
    });
    CHECK(s.code() == Code::kNotFound);
    CHECK(s.message() ==
          "remove container 3f2a1b4c5d6e: dockerd: No such container: " + kId + " (HTTP 404)");
    CHECK(server.requests.back().method == "DELETE");
    CHECK(server.requests.back().target == "/v1.41/containers/" + kId + "?force=1&v=0");
  }

  TEST_CASE("create sends the container config and returns the id") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return full_reply(201, R"({"Id":")" + kId + R"(","Warnings":["low memory"]})");
    });
    ContainerConfig config;
    config.name = "odd-run-test-arch";
    config.image = "odd-arch:4c1d2e3f4a5b";
    config.cmd = {"/usr/local/bin/run-suites"};
    config.env = {"VERBOSE=1"};
    config.labels = {{"odd.run", "r1"}};
    config.binds = {"/w:/workspace"};
    config.network_mode = "none";
    config.resources.memory_bytes = 1 << 30;
    auto id = run(server, [&](DockerClient& c) -> asio::awaitable<Result<std::string>> {
      co_return co_await c.create_container(config);
    });
    REQUIRE(id.has_value());
    CHECK(*id == kId);
    const Request& sent = server.requests.back();
    CHECK(sent.target == "/v1.41/containers/create?name=odd-run-test-arch");
    json body = json::parse(sent.body);
    CHECK(body["Image"] == "odd-arch:4c1d2e3f4a5b");
    CHECK(body["Cmd"] == json::array({"/usr/local/bin/run-suites"}));
    CHECK_FALSE(body.contains("Entrypoint"));
    CHECK(body["Env"] == json::array({"VERBOSE=1"}));
    CHECK(body["Labels"] == json{{"odd.run", "r1"}});
    CHECK(body["StdinOnce"] == false);
    CHECK(body["AttachStdout"] == true);
    CHECK(body["HostConfig"]["Binds"] == json::array({"/w:/workspace"}));
    CHECK(body["HostConfig"]["NetworkMode"] == "none");
    CHECK(body["HostConfig"]["Memory"] == 1 << 30);
    CHECK_FALSE(body["HostConfig"].contains("NanoCpus"));
  }

  TEST_CASE("a name taken on create is already_exists") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return full_reply(
          409, R"({"message":"Conflict. The container name \"/odd-x\" is already in use"})");
    });
    ContainerConfig config;
    config.name = "odd-x";
    config.image = "busybox";
    auto id = run(server, [&](DockerClient& c) -> asio::awaitable<Result<std::string>> {
      co_return co_await c.create_container(config);
    });
    REQUIRE_FALSE(id.has_value());
    CHECK(id.error().code() == Code::kAlreadyExists);
  }

  TEST_CASE("a wait registered before start gives the exit code once the body arrives") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return chunked_reply(200, {R"({"StatusCode":3,)", R"("Error":null})"}, End::kComplete);
    });
    auto result = run(server, [](DockerClient& c) -> asio::awaitable<Result<WaitResult>> {
      co_return co_await c.wait_container("odd-x", WaitCondition::kNextExit);
    });
    REQUIRE(result.has_value());
    CHECK(result->status_code == 3);
    CHECK(result->error.empty());
    CHECK(server.requests.back().target == "/v1.41/containers/odd-x/wait?condition=next-exit");
  }

  TEST_CASE("a wait cut off before its result is unavailable") {
    FakeDockerd server;
    server.handler =
        dockerd("1.41", [](const Request&) { return chunked_reply(200, {}, End::kBreak); });
    auto result = run(server, [](DockerClient& c) -> asio::awaitable<Result<WaitResult>> {
      co_return co_await c.wait_container("odd-x", WaitCondition::kNotRunning);
    });
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code() == Code::kUnavailable);
    CHECK(result.error().message().starts_with("wait for container odd-x: "));
  }

  TEST_CASE("pull progress split across reads reaches the callback line by line") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return chunked_reply(
          200,
          {R"({"status":"Pulling fs la)", "yer\",\"id\":\"a1\"}\r\n{\"status\":",
           R"("Downloading","progressDetail":{"current":5,"total":10},"id":"a1"})", "\r\n"},
          End::kComplete);
    });
    std::vector<PullProgress> seen;
    Status s = run(server, [&](DockerClient& c) -> asio::awaitable<Status> {
      co_return co_await c.pull_image(
          "registry.local:5000/team/app:1.2", [&](const PullProgress& p) { seen.push_back(p); },
          Millis(5000));
    });
    CHECK(s.ok());
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].status == "Pulling fs layer");
    CHECK(seen[1].current == 5);
    CHECK(seen[1].total == 10);
    CHECK(server.requests.back().target ==
          "/v1.41/images/create?fromImage=registry.local%3A5000%2Fteam%2Fapp&tag=1.2");
  }

  TEST_CASE("a pull error line becomes a status in dockerd's words naming the image") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return chunked_reply(
          200,
          {R"({"status":"Pulling from library/nope","id":"1"})"
           "\n"
           R"({"errorDetail":{"message":"manifest for nope:1 not found: manifest unknown"},"error":"manifest for nope:1 not found: manifest unknown"})"
           "\n"},
          End::kComplete);
    });
    Status s = run(server, [](DockerClient& c) -> asio::awaitable<Status> {
      co_return co_await c.pull_image("nope:1", nullptr, Millis(5000));
    });
    CHECK(s.code() == Code::kNotFound);
    CHECK(s.message() ==
          "pull image nope:1: dockerd: manifest for nope:1 not found: manifest unknown");
  }

  TEST_CASE("a registry failure answered with HTTP 500 is unavailable, not internal") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return full_reply(500,
                        R"({"message":"Get \"https://r/v2/\": dial tcp: connection refused"})");
    });
    Status s = run(server, [](DockerClient& c) -> asio::awaitable<Status> {
      co_return co_await c.pull_image("r/x:1", nullptr, Millis(5000));
    });
    CHECK(s.code() == Code::kUnavailable);
    CHECK(s.message().starts_with("pull image r/x:1: dockerd: Get "));
  }

  TEST_CASE("a pull that outlives its timeout is deadline_exceeded") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return chunked_reply(200,
                           {R"({"status":"Waiting"})"
                            "\n"},
                           End::kSilent);
    });
    Status s = run(server, [](DockerClient& c) -> asio::awaitable<Status> {
      co_return co_await c.pull_image("slow:1", nullptr, Millis(50));
    });
    CHECK(s.code() == Code::kDeadlineExceeded);
    CHECK(s.message() == "pull image slow:1: not finished within 50ms");
  }

  TEST_CASE("events resume after a broken connection without repeating or losing any") {
    FakeDockerd server;
    int events_requests = 0;
    server.handler = dockerd("1.41", [&](const Request& r) {
      if (++events_requests == 1) {
        // The last line is cut by the break: it must not be delivered half, nor lost.
        return chunked_reply(200,
                             {event_line("create", "a", 1), event_line("create", "b", 2),
                              event_line("start", "b", 2), R"({"Type":"container","Act)"},
                             End::kBreak);
      }
      (void)r;
      return chunked_reply(200,
                           {event_line("create", "b", 2) + event_line("start", "b", 2),
                            event_line("die", "b", 2), event_line("destroy", "b", 3)},
                           End::kSilent);
    });
    EventsOptions options;
    options.filters = {{"type", {"container"}}};
    options.reconnect_backoff = Millis(1);
    auto seen =
        run(server, [&](DockerClient& c) -> asio::awaitable<Result<std::vector<std::string>>> {
          auto stream = co_await c.events(options);
          if (!stream) co_return stream.error();
          std::vector<std::string> out;
          while (out.size() < 5) {
            auto event = co_await (*stream)->next();
            if (!event) co_return event.error();
            if (!*event) break;
            out.push_back((*event)->action + " " + (*event)->actor_id + " " +
                          std::to_string((*event)->time_nano));
          }
          (*stream)->close();
          co_return out;
        });
    REQUIRE(seen.has_value());
    CHECK(*seen == std::vector<std::string>{"create a 1", "create b 2", "start b 2", "die b 2",
                                            "destroy b 3"});
    std::vector<std::string> targets = server.targets();
    REQUIRE(targets.size() == 3);
    CHECK(targets[1] == "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D");
    CHECK(targets[2] ==
          "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D&since=0.000000002");
  }

  TEST_CASE("events give up with unavailable once the reconnect budget is spent") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [&](const Request&) {
      server.refuse_dials = 100;
      return chunked_reply(200, {event_line("create", "a", 1)}, End::kBreak);
    });
    EventsOptions options;
    options.reconnect_attempts = 3;
    options.reconnect_backoff = Millis(1);
    auto outcome = run(server, [&](DockerClient& c) -> asio::awaitable<Result<int>> {
      auto stream = co_await c.events(options);
      if (!stream) co_return stream.error();
      int delivered = 0;
      for (;;) {
        auto event = co_await (*stream)->next();
        if (!event) co_return event.error();
        ++delivered;
      }
    });
    REQUIRE_FALSE(outcome.has_value());
    CHECK(outcome.error().code() == Code::kUnavailable);
    CHECK(outcome.error().message().find("gave up after 3 reconnect attempts") !=
          std::string::npos);
    CHECK(server.dials == 2 + 3);  // /version, the first feed, then the attempts
  }

  TEST_CASE("an events feed with an until in the past ends with nullopt") {
    FakeDockerd server;
    server.handler = dockerd("1.41", [](const Request&) {
      return chunked_reply(200, {event_line("create", "a", 1)}, End::kComplete);
    });
    EventsOptions options;
    options.since_nano = 0;
    options.until_nano = 5;
    auto count = run(server, [&](DockerClient& c) -> asio::awaitable<Result<int>> {
      auto stream = co_await c.events(options);
      if (!stream) co_return stream.error();
      int delivered = 0;
      for (;;) {
        auto event = co_await (*stream)->next();
        if (!event) co_return event.error();
        if (!*event) co_return delivered;
        ++delivered;
      }
    });
    REQUIRE(count.has_value());
    CHECK(*count == 1);
    CHECK(server.requests.back().target == "/v1.41/events?since=0.000000000&until=0.000000005");
  }
}

}  // namespace
}  // namespace odd::engine
