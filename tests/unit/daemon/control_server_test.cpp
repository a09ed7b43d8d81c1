// ControlServer over a real Unix socket in a /tmp directory, in front of a FakeControlService:
// each route's answer, the error shapes, submit (detached and streamed), what happens when
// clients leave or stop reading, stop(), socket replacement, peer credentials and curl. Also the
// pure request interpretation (route, query parameters, submit bodies) without sockets.
#include "daemon/control_server.hpp"

#include <doctest/doctest.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace odd::daemon {
namespace {

using namespace std::chrono_literals;
using boost::system::error_code;
using UnixSocket = asio::local::stream_protocol::socket;
using proto::Json;

constexpr std::string_view kRunId = "20261122-142030Z-3f2a";

proto::Timestamp at(std::string_view text) { return proto::parse_rfc3339(text).value(); }

proto::Event make_event(std::uint64_t seq) {
  proto::Event event;
  event.seq = seq;
  event.ts = at("2026-11-22T14:20:30Z");
  event.run = std::string(kRunId);
  event.job = "test-arch";
  event.type = std::string(proto::kEventJobState);
  event.payload = Json::object();
  event.payload["state"] = "running";
  return event;
}

proto::RunInfo make_run() {
  proto::RunInfo run;
  run.id = std::string(kRunId);
  run.name = "distro-matrix";
  run.state = proto::RunState::kRunning;
  run.created_at = at("2026-11-22T14:20:30Z");
  run.caller = {1000, 1000, 42};
  proto::JobStatus job;
  job.key = "test-arch";
  job.job = "test";
  job.matrix = {{"distro", "arch"}};
  job.host = "local";
  job.state = proto::JobState::kRunning;
  job.attempt = 1;
  run.jobs.push_back(job);
  return run;
}

// A run's events: cursors read them from their own position; following ones wait for more.
struct Feed {
  explicit Feed(const asio::any_io_executor& executor)
      : wake(executor, asio::steady_timer::time_point::max()) {}
  std::vector<proto::Event> events;
  bool ended = false;
  std::optional<Status> failure;  // what a cursor past the last event returns, if set
  int cursors = 0;                // alive
  asio::steady_timer wake;

  void push(proto::Event event) {
    events.push_back(std::move(event));
    wake.cancel();
  }
  void end() {
    ended = true;
    wake.cancel();
  }
};

class FakeEventCursor final : public EventCursor {
 public:
  FakeEventCursor(std::shared_ptr<Feed> feed, std::uint64_t since, bool follow)
      : feed_(std::move(feed)), follow_(follow) {
    ++feed_->cursors;
    while (pos_ < feed_->events.size() && feed_->events[pos_].seq < since) ++pos_;
  }
  ~FakeEventCursor() override { --feed_->cursors; }

  asio::awaitable<Result<std::optional<proto::Event>>> next() override {
    for (;;) {
      if (pos_ < feed_->events.size()) co_return std::optional<proto::Event>(feed_->events[pos_++]);
      if (feed_->failure) co_return *feed_->failure;
      if (feed_->ended || !follow_) co_return std::optional<proto::Event>();
      co_await feed_->wake.async_wait(asio::as_tuple(asio::use_awaitable));
      auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none) co_return cancelled("cancelled");
    }
  }

 private:
  std::shared_ptr<Feed> feed_;
  bool follow_;
  std::size_t pos_ = 0;
};

struct ByteStats {
  int alive = 0;
  std::size_t pulled = 0;  // pieces handed out
};

// Hands out `pieces`, then the end; with `endless`, 64 KiB pieces forever.
class FakeByteCursor final : public ByteCursor {
 public:
  FakeByteCursor(std::vector<std::string> pieces, bool endless, std::shared_ptr<ByteStats> stats)
      : pieces_(std::move(pieces)), endless_(endless), stats_(std::move(stats)) {
    ++stats_->alive;
  }
  ~FakeByteCursor() override { --stats_->alive; }

  asio::awaitable<Result<std::string>> next() override {
    ++stats_->pulled;
    if (endless_) co_return std::string(64 * 1024, 'x');
    if (pos_ < pieces_.size()) co_return pieces_[pos_++];
    co_return std::string();
  }

 private:
  std::vector<std::string> pieces_;
  bool endless_;
  std::shared_ptr<ByteStats> stats_;
  std::size_t pos_ = 0;
};

class FakeControlService final : public ControlService {
 public:
  explicit FakeControlService(const asio::any_io_executor& executor)
      : feed(std::make_shared<Feed>(executor)), bytes(std::make_shared<ByteStats>()) {}

  std::vector<std::string> calls;  // every method called, by name
  std::shared_ptr<Feed> feed;
  std::shared_ptr<ByteStats> bytes;

  std::optional<Status> submit_error;
  std::vector<proto::SubmitRequest> submitted;
  std::vector<proto::Caller> callers;
  std::vector<std::pair<std::string, std::string>> gone;  // run id, reason
  std::optional<proto::RunState> listed_state;
  std::size_t listed_limit = 0;
  std::vector<std::string> cancelled_runs;
  std::uint64_t events_since = 0;
  bool events_follow = false;
  std::string logs_key;
  LogSelect logs_select = LogSelect::kStdout;
  bool logs_follow = false;
  bool endless_logs = false;
  std::optional<Status> summary_error;

  asio::awaitable<Result<Json>> version() override {
    calls.push_back("version");
    co_return Json::parse(R"({"version": "0.1.0", "api_version": 1, "docker": null})");
  }
  asio::awaitable<Result<Json>> health() override {
    calls.push_back("health");
    co_return Json::parse(R"({"docker": {"reachable": true, "error": null}, "hosts": {}})");
  }
  asio::awaitable<Result<Submitted>> submit(proto::SubmitRequest request,
                                            proto::Caller caller) override {
    calls.push_back("submit");
    if (submit_error) co_return *submit_error;
    const bool detach = request.detach;
    submitted.push_back(std::move(request));
    callers.push_back(caller);
    Submitted out;
    out.run_id = std::string(kRunId);
    if (!detach) out.events = std::make_unique<FakeEventCursor>(feed, 0, true);
    co_return out;
  }
  void submitter_gone(const std::string& run_id, const std::string& reason) override {
    calls.push_back("submitter_gone");
    gone.emplace_back(run_id, reason);
  }
  Result<std::vector<proto::RunInfo>> list_runs(std::optional<proto::RunState> state,
                                                std::size_t limit) override {
    calls.push_back("list_runs");
    listed_state = state;
    listed_limit = limit;
    proto::RunInfo older = make_run();
    older.id = "20261121-101010Z-00ff";
    return std::vector<proto::RunInfo>{make_run(), older};
  }
  Result<proto::RunInfo> get_run(const std::string& run_id) override {
    calls.push_back("get_run");
    if (run_id != kRunId) return not_found("no run " + run_id);
    return make_run();
  }
  Status cancel_run(const std::string& run_id) override {
    calls.push_back("cancel_run");
    cancelled_runs.push_back(run_id);
    return ok_status();
  }
  Result<proto::RunSummary> summary(const std::string& run_id) override {
    calls.push_back("summary");
    if (summary_error) return *summary_error;
    proto::RunSummary summary;
    summary.run_id = run_id;
    summary.name = "distro-matrix";
    summary.state = proto::RunState::kSucceeded;
    summary.counts.succeeded = 1;
    return summary;
  }
  Result<std::unique_ptr<EventCursor>> events(const std::string& run_id, std::uint64_t since,
                                              bool follow) override {
    calls.push_back("events");
    if (run_id != kRunId) return not_found("no run " + run_id);
    events_since = since;
    events_follow = follow;
    return std::unique_ptr<EventCursor>(std::make_unique<FakeEventCursor>(feed, since, follow));
  }
  Result<std::unique_ptr<ByteCursor>> logs(const std::string& run_id, const std::string& job_key,
                                           LogSelect select, bool follow) override {
    calls.push_back("logs");
    if (run_id != kRunId) return not_found("no run " + run_id);
    logs_key = job_key;
    logs_select = select;
    logs_follow = follow;
    std::vector<std::string> pieces{"hello\n", "world\n"};
    return std::unique_ptr<ByteCursor>(
        std::make_unique<FakeByteCursor>(std::move(pieces), endless_logs, bytes));
  }
  Result<std::unique_ptr<ByteCursor>> artifacts(const std::string& run_id) override {
    calls.push_back("artifacts");
    std::vector<std::string> pieces{std::string(512, '\0'), std::string(512, 't')};
    (void)run_id;
    return std::unique_ptr<ByteCursor>(
        std::make_unique<FakeByteCursor>(std::move(pieces), false, bytes));
  }
};

// ---- Client side ----------------------------------------------------------------------------

struct Response {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;                            // de-chunked
  bool complete = false;                       // framed end seen (or EOF for unframed bodies)
  std::size_t consumed = 0;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  Json json() const { return Json::parse(body); }
};

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Parses one response from the start of `text`; `eof` says no more bytes will come.
Response parse_response(const std::string& text, bool eof) {
  Response r;
  const std::size_t head_end = text.find("\r\n\r\n");
  if (head_end == std::string::npos) return r;
  std::size_t line_end = text.find("\r\n");
  const std::string status_line = text.substr(0, line_end);
  r.status = static_cast<unsigned>(std::stoul(status_line.substr(9, 3)));
  while (line_end < head_end) {
    const std::size_t next = text.find("\r\n", line_end + 2);
    const std::string line = text.substr(line_end + 2, next - line_end - 2);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[lower(line.substr(0, colon))] = value;
    }
    line_end = next;
  }
  std::size_t pos = head_end + 4;
  if (r.status / 100 == 1) {
    r.complete = true;
    r.consumed = pos;
    return r;
  }
  if (!r.header("content-length").empty()) {
    const std::size_t length = std::stoul(r.header("content-length"));
    r.body = text.substr(pos, length);
    r.complete = text.size() >= pos + length;
    r.consumed = pos + length;
  } else if (lower(r.header("transfer-encoding")) == "chunked") {
    for (;;) {
      const std::size_t size_end = text.find("\r\n", pos);
      if (size_end == std::string::npos) break;
      const std::size_t size = std::stoul(text.substr(pos, size_end - pos), nullptr, 16);
      if (size == 0) {
        r.complete = text.size() >= size_end + 4;
        r.consumed = size_end + 4;
        break;
      }
      if (text.size() < size_end + 2 + size + 2) break;
      r.body += text.substr(size_end + 2, size);
      pos = size_end + 2 + size + 2;
    }
  } else {
    r.body = text.substr(pos);
    r.complete = eof;
    r.consumed = text.size();
  }
  return r;
}

struct Client {
  explicit Client(const asio::any_io_executor& executor) : socket(executor) {}
  UnixSocket socket;
  std::string in;
  bool eof = false;

  asio::awaitable<error_code> connect(const std::string& path) {
    auto [ec] = co_await socket.async_connect(asio::local::stream_protocol::endpoint(path),
                                              asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }
  asio::awaitable<error_code> send(std::string text) {
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(text), asio::as_tuple(asio::use_awaitable));
    co_return ec;
  }
  // One read; false at the end of the stream (or an error).
  asio::awaitable<bool> fill() {
    std::string chunk(64 * 1024, '\0');
    auto [ec, n] =
        co_await socket.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      eof = true;
      co_return false;
    }
    in.append(chunk.data(), n);
    co_return true;
  }
  asio::awaitable<void> open(const std::string& path) {
    auto ec = co_await connect(path);
    REQUIRE_MESSAGE(!ec, ec.message());
  }
  // Reads until `needle` arrived; fails the test when the stream ends first.
  asio::awaitable<void> expect(std::string needle) {
    while (in.find(needle) == std::string::npos) {
      const bool more = co_await fill();
      REQUIRE_MESSAGE(more, "the stream ended before " << needle << " arrived: " << in);
    }
  }
  // The next complete response (100 Continue included), or what arrived before the end.
  asio::awaitable<Response> response() {
    for (;;) {
      Response r = parse_response(in, eof);
      if (r.complete) {
        in.erase(0, r.consumed);
        co_return r;
      }
      bool more = false;
      if (!eof) more = co_await fill();
      if (!more) {
        r = parse_response(in, true);
        in.clear();
        co_return r;
      }
    }
  }
  // Returns once the server closed the connection (anything unread is kept in `in`).
  asio::awaitable<void> wait_closed() {
    for (;;) {
      const bool more = co_await fill();
      if (!more) co_return;
    }
  }

  void close() {
    error_code ignored;
    socket.close(ignored);
  }
};

std::string request(std::string_view method, std::string_view target, std::string_view body = "",
                    std::string_view content_type = "application/json",
                    std::string_view extra = "") {
  std::string out(method);
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\nHost: oddd\r\n";
  if (!body.empty() || method == "POST") {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (!body.empty()) {
    out += "Content-Type: ";
    out += content_type;
    out += "\r\n";
  }
  out += extra;
  out += "\r\n";
  out += body;
  return out;
}

std::string run_path(std::string_view rest = "") {
  std::string out = "/v1/runs/";
  out += kRunId;
  out += rest;
  return out;
}

const std::string kSubmitBody =
    R"({"spec_text": "version: 1", "vars": {"a": "b"}, "workdir": "/srv/odd/w", "detach": true})";
const std::string kWaitingSubmitBody =
    R"({"spec_text": "version: 1", "workdir": "/srv/odd/w", "detach": false})";

// ---- Harness --------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/oddsrvXXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Env {
  asio::io_context& io;
  FakeControlService& service;
  ControlServer& server;
  const std::string& path;
  const bool& run_ended;

  asio::any_io_executor executor() const { return io.get_executor(); }

  // One request on a connection of its own.
  asio::awaitable<Response> ask(std::string text) {
    Client client(executor());
    co_await client.open(path);
    co_await client.send(std::move(text));
    co_return co_await client.response();
  }

  // Lets the server work until `done()` holds (checked every few milliseconds); fails the test
  // when it does not within 10 s.
  asio::awaitable<void> until(std::function<bool()> done) {
    asio::steady_timer timer(executor());
    for (int i = 0; i < 2000 && !done(); ++i) {
      timer.expires_after(5ms);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    const bool reached = done();
    REQUIRE(reached);
  }

  asio::awaitable<void> pause(std::chrono::milliseconds how_long) {
    asio::steady_timer timer(executor(), how_long);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
};

// Runs `body(env)` against a listening server; stops the server when the body is done and checks
// that run() returned.
template <class Body>
void with_server(ControlServerOptions options, Body body) {
  asio::io_context io;
  TempDir dir;
  FakeControlService service(io.get_executor());
  options.socket_path = dir.path() + "/s.sock";
  options.socket_group.clear();
  ControlServer server(io.get_executor(), service, options);
  const Status listened = server.listen();
  REQUIRE_MESSAGE(listened.ok(), listened.to_string());
  bool run_ended = false;
  bool body_ended = false;
  bool timed_out = false;
  asio::steady_timer watchdog(io, 30s);
  watchdog.async_wait([&](error_code ec) {
    if (ec) return;
    timed_out = true;
    io.stop();
  });
  asio::co_spawn(io, server.run(), [&](std::exception_ptr e) {
    run_ended = true;
    if (body_ended) watchdog.cancel();
    if (e) std::rethrow_exception(e);
  });
  Env env{io, service, server, options.socket_path, run_ended};
  std::exception_ptr failure;
  asio::co_spawn(io, body(env), [&](std::exception_ptr e) {
    failure = e;
    body_ended = true;
    server.stop();
    if (run_ended) watchdog.cancel();
  });
  io.run();
  CHECK_FALSE(timed_out);
  CHECK(run_ended);
  if (failure) std::rethrow_exception(failure);
}

void check_error(const Response& r, unsigned status, std::string_view code,
                 std::string_view message_part) {
  CHECK(r.status == status);
  CHECK(r.header("content-type") == "application/json");
  REQUIRE(!r.body.empty());
  CHECK(r.body.back() == '\n');
  const Json json = r.json();
  REQUIRE(json.contains("error"));
  const Json& error = json["error"];
  CHECK(error.size() == 3);
  CHECK(error["code"] == code);
  const std::string message = error["message"].get<std::string>();
  CHECK_MESSAGE(message.find(message_part) != std::string::npos, message);
  CHECK(error.contains("path"));
}

// ---- Routes -------------------------------------------------------------------------------

TEST_CASE("GET /v1/version answers the service's JSON and keeps the connection alive") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Client client(env.executor());
    co_await client.open(env.path);
    for (int i = 0; i < 2; ++i) {
      co_await client.send(request("GET", "/v1/version"));
      Response r = co_await client.response();
      CHECK(r.status == 200);
      CHECK(r.header("content-type") == "application/json");
      CHECK(r.header("connection").empty());
      REQUIRE(!r.body.empty());
      CHECK(r.body.back() == '\n');
      CHECK(r.json()["version"] == "0.1.0");
    }
    CHECK(env.service.calls == std::vector<std::string>{"version", "version"});
  });
}

TEST_CASE("pipelined requests are answered in order") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send(request("GET", "/v1/health") + request("GET", "/v1/version"));
    Response first = co_await client.response();
    Response second = co_await client.response();
    CHECK(first.status == 200);
    CHECK(first.json()["docker"]["reachable"] == true);
    CHECK(second.status == 200);
    CHECK(second.json()["api_version"] == 1);
  });
}

TEST_CASE("GET /v1/runs lists run objects without jobs, passing state and limit on") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("GET", "/v1/runs?state=running&limit=2"));
    CHECK(r.status == 200);
    const Json list = r.json();
    REQUIRE(list.is_array());
    REQUIRE(list.size() == 2);
    CHECK(list[0]["id"] == kRunId);
    CHECK_FALSE(list[0].contains("jobs"));
    CHECK(proto::decode_run_info(list[1]).has_value());
    CHECK(env.service.listed_state == proto::RunState::kRunning);
    CHECK(env.service.listed_limit == 2);

    r = co_await env.ask(request("GET", "/v1/runs"));
    CHECK(r.status == 200);
    CHECK_FALSE(env.service.listed_state.has_value());
    CHECK(env.service.listed_limit == 50);
  });
}

TEST_CASE("GET /v1/runs/{id} answers the run with its jobs, or the service's not_found") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("GET", run_path()));
    CHECK(r.status == 200);
    auto run = proto::decode_run_info(r.json());
    REQUIRE(run.has_value());
    CHECK(*run == make_run());

    r = co_await env.ask(request("GET", "/v1/runs/20261122-142030Z-0000"));
    check_error(r, 404, "not_found", "no run 20261122-142030Z-0000");
    CHECK(r.json()["error"]["path"].is_null());
  });
}

TEST_CASE("POST /v1/runs/{id}/cancel cancels through the service and answers the id") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("POST", run_path("/cancel")));
    CHECK(r.status == 200);
    CHECK(r.json()["id"] == kRunId);
    CHECK(env.service.cancelled_runs == std::vector<std::string>{std::string(kRunId)});
  });
}

TEST_CASE("GET /v1/runs/{id}/summary answers the summary, or 409 before there is one") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("GET", run_path("/summary")));
    CHECK(r.status == 200);
    auto summary = proto::decode_run_summary(r.json());
    REQUIRE(summary.has_value());
    CHECK(summary->run_id == kRunId);
    CHECK(summary->counts.succeeded == 1);

    env.service.summary_error = failed_precondition("run has no summary yet");
    r = co_await env.ask(request("GET", run_path("/summary")));
    check_error(r, 409, "failed_precondition", "no summary yet");
  });
}

TEST_CASE("GET events streams the stored events as NDJSON and ends without follow") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    for (std::uint64_t seq = 0; seq < 3; ++seq) env.service.feed->push(make_event(seq));
    Response r = co_await env.ask(request("GET", run_path("/events?since=1")));
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "application/x-ndjson");
    CHECK(r.header("transfer-encoding") == "chunked");
    CHECK(r.complete);
    CHECK(env.service.events_since == 1);
    CHECK_FALSE(env.service.events_follow);
    std::vector<std::uint64_t> seqs;
    std::size_t start = 0;
    while (start < r.body.size()) {
      const std::size_t end = r.body.find('\n', start);
      REQUIRE(end != std::string::npos);
      auto event = proto::decode_event(Json::parse(r.body.substr(start, end - start)));
      REQUIRE(event.has_value());
      CHECK(*event == make_event(event->seq));
      seqs.push_back(event->seq);
      start = end + 1;
    }
    CHECK(seqs == std::vector<std::uint64_t>{1, 2});
  });
}

TEST_CASE("GET events with follow streams live events until the run's stream ends") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    env.service.feed->push(make_event(0));
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send(request("GET", run_path("/events?follow=true")));
    co_await client.expect("\"seq\":0");
    env.service.feed->push(make_event(1));
    co_await client.expect("\"seq\":1");
    env.service.feed->end();
    Response r = co_await client.response();
    CHECK(r.status == 200);
    CHECK(r.complete);
    CHECK(r.header("connection") == "close");
    CHECK(env.service.events_follow);
    co_await client.wait_closed();
  });
}

TEST_CASE("GET logs streams the cursor's bytes with stream and follow passed on") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r =
        co_await env.ask(request("GET", run_path("/jobs/test-arch/logs?stream=both&follow=1")));
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "application/octet-stream");
    CHECK(r.complete);
    CHECK(r.body == "hello\nworld\n");
    CHECK(env.service.logs_key == "test-arch");
    CHECK(env.service.logs_select == LogSelect::kBoth);
    CHECK(env.service.logs_follow);

    r = co_await env.ask(request("GET", run_path("/jobs/test-ubuntu-22.04/logs")));
    CHECK(r.status == 200);
    CHECK(env.service.logs_key == "test-ubuntu-22.04");
    CHECK(env.service.logs_select == LogSelect::kStdout);
    CHECK_FALSE(env.service.logs_follow);
    co_await env.until([&] { return env.service.bytes->alive == 0; });
  });
}

TEST_CASE("GET artifacts streams a tar") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("GET", run_path("/artifacts")));
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "application/x-tar");
    CHECK(r.complete);
    CHECK(r.body == std::string(512, '\0') + std::string(512, 't'));
  });
}

// ---- Errors -------------------------------------------------------------------------------

TEST_CASE("unknown paths are 404, wrong methods 405 with Allow, bad queries 400") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("GET", "/v1/nothing"));
    check_error(r, 404, "not_found", "/v1/nothing");
    r = co_await env.ask(request("GET", "/metrics"));
    check_error(r, 404, "not_found", "/metrics");
    r = co_await env.ask(request("DELETE", "/v1/runs"));
    check_error(r, 405, "invalid_argument", "DELETE");
    CHECK(r.header("allow") == "GET, POST");
    r = co_await env.ask(request("GET", run_path("/cancel")));
    check_error(r, 405, "invalid_argument", "allowed: POST");
    CHECK(r.header("allow") == "POST");

    struct Case {
      std::string target;
      std::string message_part;
    };
    const std::vector<Case> cases = {
        {"/v1/runs?limit=0", "\"limit\": expected an integer from 1 to 1000, got \"0\""},
        {"/v1/runs?limit=1001", "\"limit\""},
        {"/v1/runs?limit=ten", "got \"ten\""},
        {"/v1/runs?state=done", "\"state\": expected one of queued, running"},
        {"/v1/runs?colour=red", "unknown query parameter \"colour\" (accepted here: state, limit)"},
        {"/v1/runs?limit=1&limit=2", "\"limit\" given more than once"},
        {run_path("/events?follow=yes"), "\"follow\": expected 0, 1, true or false"},
        {run_path("/events?since=-1"), "\"since\""},
        {run_path("/jobs/a/logs?stream=stdin"), "\"stream\": expected stdout, stderr or both"},
        {"/v1/version?pretty=1", "(accepted here: none)"},
    };
    for (const auto& c : cases) {
      CAPTURE(c.target);
      r = co_await env.ask(request("GET", c.target));
      check_error(r, 400, "invalid_argument", c.message_part);
    }
    CHECK(env.service.calls.empty());
  });
}

TEST_CASE("a run id that is not one is 404 without asking the service") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("GET", "/v1/runs/not-a-run"));
    check_error(r, 404, "not_found", "no run not-a-run");
    r = co_await env.ask(request("GET", "/v1/runs/..%2F..%2Fetc/events"));
    check_error(r, 404, "not_found", "no run ../../etc");
    r = co_await env.ask(request("POST", "/v1/runs/20261399-142030Z-3f2a/cancel"));
    check_error(r, 404, "not_found", "no run 20261399-142030Z-3f2a");
    CHECK(env.service.calls.empty());
  });
}

TEST_CASE("a body over the limit is 413 and a header over the limit 431") {
  ControlServerOptions options;
  options.max_body_bytes = 4096;
  options.max_header_bytes = 2048;
  with_server(options, [](Env& env) -> asio::awaitable<void> {
    Client declared(env.executor());
    co_await declared.open(env.path);
    co_await declared.send(
        "POST /v1/runs HTTP/1.1\r\nHost: oddd\r\nContent-Type: application/json\r\n"
        "Content-Length: 4097\r\n\r\n");
    Response r = co_await declared.response();
    check_error(r, 413, "invalid_argument", "larger than 4096 bytes");
    CHECK(r.header("connection") == "close");
    co_await declared.wait_closed();

    Client chunked(env.executor());
    co_await chunked.open(env.path);
    std::string text =
        "POST /v1/runs HTTP/1.1\r\nHost: oddd\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i) text += "400\r\n" + std::string(1024, ' ') + "\r\n";
    co_await chunked.send(text);
    r = co_await chunked.response();
    check_error(r, 413, "invalid_argument", "larger than 4096 bytes");

    const std::string big_header = "X-Padding: " + std::string(3000, 'p') + "\r\n";
    r = co_await env.ask(request("GET", "/v1/version", "", "", big_header));
    check_error(r, 431, "invalid_argument", "header is larger than 2048 bytes");
    CHECK(env.service.calls.empty());
  });
}

TEST_CASE("a malformed request is 400 and closes the connection") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send("HELLO THERE\r\n\r\n");
    Response r = co_await client.response();
    check_error(r, 400, "invalid_argument", "malformed HTTP request");
    CHECK(r.header("connection") == "close");
    co_await client.wait_closed();
  });
}

TEST_CASE("connections beyond max_connections get 503 and are closed") {
  ControlServerOptions options;
  options.max_connections = 2;
  with_server(options, [](Env& env) -> asio::awaitable<void> {
    std::vector<std::unique_ptr<Client>> held;
    for (int i = 0; i < 2; ++i) {
      held.push_back(std::make_unique<Client>(env.executor()));
      co_await held.back()->open(env.path);
      co_await held.back()->send(request("GET", "/v1/version"));
      Response r = co_await held.back()->response();
      CHECK(r.status == 200);
    }
    Client extra(env.executor());
    co_await extra.open(env.path);
    co_await extra.send(request("GET", "/v1/version"));
    Response r = co_await extra.response();
    check_error(r, 503, "unavailable", "maximum of 2 connections");
    co_await extra.wait_closed();
    extra.close();

    held[0]->close();
    co_await env.until([&] { return env.server.connections() < 2; });
    r = co_await env.ask(request("GET", "/v1/version"));
    CHECK(r.status == 200);
  });
}

// ---- Submit -------------------------------------------------------------------------------

TEST_CASE("a detached submit is 201 with the id, and the caller is the peer process") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("POST", "/v1/runs", kSubmitBody));
    CHECK(r.status == 201);
    CHECK(r.json() == Json::parse(R"({"id": "20261122-142030Z-3f2a"})"));
    CHECK(r.header("location") == run_path());
    REQUIRE(env.service.submitted.size() == 1);
    CHECK(env.service.submitted[0].workdir == "/srv/odd/w");
    CHECK(env.service.submitted[0].vars.at("a") == "b");
    CHECK(env.service.submitted[0].spec_text == "version: 1");
    REQUIRE(env.service.callers.size() == 1);
    const proto::Caller caller = env.service.callers[0];
    CHECK(caller.uid == ::getuid());
    CHECK(caller.gid == ::getgid());
    CHECK(caller.pid == ::getpid());
  });
}

TEST_CASE("a submit with Expect: 100-continue gets 100 before it sends its body") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Client client(env.executor());
    co_await client.open(env.path);
    std::string head =
        request("POST", "/v1/runs", kSubmitBody, "application/json", "Expect: 100-continue\r\n");
    head.resize(head.size() - kSubmitBody.size());
    co_await client.send(head);
    Response r = co_await client.response();
    CHECK(r.status == 100);
    co_await client.send(kSubmitBody);
    r = co_await client.response();
    CHECK(r.status == 201);
  });
}

TEST_CASE("bad submit bodies are 400 naming what is wrong and where") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Response r = co_await env.ask(request("POST", "/v1/runs", kSubmitBody, "text/plain"));
    check_error(r, 400, "invalid_argument", "Content-Type application/json, got \"text/plain\"");

    r = co_await env.ask(request("POST", "/v1/runs", R"({"workdir": nope})"));
    check_error(r, 400, "invalid_argument", "not valid JSON at byte 14");

    r = co_await env.ask(request("POST", "/v1/runs", R"({"spec_text": "x", "workdir": 3})"));
    check_error(r, 400, "invalid_argument", "workdir");
    CHECK(r.json()["error"]["path"] == "workdir");
    CHECK(env.service.calls.empty());

    env.service.submit_error =
        invalid_argument("jobs.test.steps[1].run.timeout: expected a duration such as \"90s\"");
    r = co_await env.ask(request("POST", "/v1/runs", kSubmitBody));
    check_error(r, 400, "invalid_argument", "expected a duration");
    CHECK(r.json()["error"]["path"] == "jobs.test.steps[1].run.timeout");

    env.service.submit_error = unavailable("dockerd is not reachable");
    r = co_await env.ask(request("POST", "/v1/runs", kSubmitBody));
    check_error(r, 503, "unavailable", "dockerd");
    CHECK(r.json()["error"]["path"].is_null());
  });
}

TEST_CASE("a waiting submit streams its id, then its events, until the run ends") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    env.service.feed->push(make_event(0));
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send(request("POST", "/v1/runs", kWaitingSubmitBody));
    co_await client.expect("\"seq\":0");
    env.service.feed->push(make_event(1));
    env.service.feed->end();
    Response r = co_await client.response();
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "application/x-ndjson");
    CHECK(r.complete);
    std::vector<Json> lines;
    std::size_t start = 0;
    while (start < r.body.size()) {
      const std::size_t end = r.body.find('\n', start);
      REQUIRE(end != std::string::npos);
      lines.push_back(Json::parse(r.body.substr(start, end - start)));
      start = end + 1;
    }
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == Json::parse(R"({"id": "20261122-142030Z-3f2a"})"));
    CHECK(proto::decode_event(lines[1]).value() == make_event(0));
    CHECK(proto::decode_event(lines[2]).value() == make_event(1));
    co_await client.wait_closed();
    CHECK(env.service.gone.empty());
    CHECK(env.service.feed->cursors == 0);
  });
}

TEST_CASE("a submitter that closes mid-stream makes the server call submitter_gone") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    env.service.feed->push(make_event(0));
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send(request("POST", "/v1/runs", kWaitingSubmitBody));
    co_await client.expect("\"seq\":0");
    client.close();
    co_await env.until([&] { return !env.service.gone.empty(); });
    REQUIRE(env.service.gone.size() == 1);
    CHECK(env.service.gone[0].first == kRunId);
    CHECK(env.service.gone[0].second == "client disconnected");
    co_await env.until([&] { return env.service.feed->cursors == 0; });
  });
}

TEST_CASE("a submitter gone before its answer was written still gets its run cancelled") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send(request("POST", "/v1/runs", kWaitingSubmitBody));
    client.close();
    co_await env.until([&] { return !env.service.gone.empty(); });
    REQUIRE(env.service.gone.size() == 1);
    CHECK(env.service.gone[0].first == kRunId);
    CHECK(env.service.submitted.size() == 1);
  });
}

TEST_CASE("a submit whose event stream fails ends with an error line and gives up the run") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    env.service.feed->push(make_event(0));
    env.service.feed->failure = internal_error("events.ndjson: read error");
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send(request("POST", "/v1/runs", kWaitingSubmitBody));
    Response r = co_await client.response();
    CHECK(r.status == 200);
    CHECK(r.complete);
    const std::size_t last_line = r.body.rfind('\n', r.body.size() - 2);
    REQUIRE(last_line != std::string::npos);
    const Json error = Json::parse(r.body.substr(last_line + 1));
    CHECK(error["error"]["code"] == "internal");
    CHECK(error["error"]["message"] == "events.ndjson: read error");
    co_await env.until([&] { return !env.service.gone.empty(); });
    CHECK(env.service.gone[0].first == kRunId);
    CHECK(env.service.gone[0].second == "event stream failed: events.ndjson: read error");
  });
}

// ---- Streams and shutdown ---------------------------------------------------------------------

TEST_CASE("an idle kept-alive connection is closed after idle_timeout") {
  ControlServerOptions options;
  options.idle_timeout = 50ms;
  with_server(options, [](Env& env) -> asio::awaitable<void> {
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send(request("GET", "/v1/version"));
    Response r = co_await client.response();
    CHECK(r.status == 200);
    co_await client.wait_closed();
    CHECK(client.in.empty());
    co_await env.until([&] { return env.server.connections() == 0; });
  });
}

TEST_CASE("an HTTP/1.0 client gets its answer and the connection closes") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Client client(env.executor());
    co_await client.open(env.path);
    co_await client.send("GET /v1/runs/" + std::string(kRunId) + "/artifacts HTTP/1.0\r\n\r\n");
    co_await client.wait_closed();
    Response r = parse_response(client.in, true);
    CHECK(r.status == 200);
    CHECK(r.header("transfer-encoding").empty());
    CHECK(r.body == std::string(512, '\0') + std::string(512, 't'));
  });
}

TEST_CASE("a follower that never reads blocks nobody and is not buffered without bound") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    env.service.endless_logs = true;
    Client stuck(env.executor());
    co_await stuck.open(env.path);
    co_await stuck.send(request("GET", run_path("/jobs/test-arch/logs?follow=1")));
    co_await env.until([&] { return env.service.bytes->pulled > 0; });

    Response r = co_await env.ask(request("GET", "/v1/version"));
    CHECK(r.status == 200);
    r = co_await env.ask(request("GET", run_path()));
    CHECK(r.status == 200);

    // Given time, an unbounded server would pull gigabytes; this one stops at socket buffers
    // plus its high-water mark.
    co_await env.pause(300ms);
    CHECK(env.service.bytes->pulled < 64);

    stuck.close();
    co_await env.until([&] { return env.service.bytes->alive == 0; });
  });
}

TEST_CASE("stop() ends run() with streams in flight and removes the socket") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    Client follower(env.executor());
    co_await follower.open(env.path);
    co_await follower.send(request("GET", run_path("/events?follow=1")));
    co_await follower.expect("\r\n\r\n");

    Client submitter(env.executor());
    co_await submitter.open(env.path);
    co_await submitter.send(request("POST", "/v1/runs", kWaitingSubmitBody));
    co_await submitter.expect("{\"id\"");

    Client idle(env.executor());
    co_await idle.open(env.path);
    co_await idle.send(request("GET", "/v1/version"));
    Response answered = co_await idle.response();
    CHECK(answered.status == 200);

    CHECK(std::filesystem::exists(env.path));
    env.server.stop();
    co_await env.until([&] { return env.run_ended; });
    CHECK_FALSE(std::filesystem::exists(env.path));
    co_await follower.wait_closed();
    co_await submitter.wait_closed();
    co_await idle.wait_closed();
    CHECK(env.service.feed->cursors == 0);
    CHECK(env.service.gone.empty());
    CHECK(env.server.connections() == 0);
  });
}

// ---- The socket ---------------------------------------------------------------------------

TEST_CASE("the socket is created with mode 0660") {
  with_server({}, [](Env& env) -> asio::awaitable<void> {
    struct stat st {};
    REQUIRE(::lstat(env.path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0660);
    co_return;
  });
}

// A group other than ours that we may give the socket to: a supplementary one, or any for root.
std::optional<::gid_t> other_group() {
  std::vector<::gid_t> groups(256);
  const int n = ::getgroups(static_cast<int>(groups.size()), groups.data());
  for (int i = 0; i < n; ++i) {
    if (groups[static_cast<std::size_t>(i)] != ::getegid())
      return groups[static_cast<std::size_t>(i)];
  }
  if (::geteuid() != 0) return std::nullopt;
  for (const char* name : {"daemon", "nogroup", "users", "bin"}) {
    if (const ::group* g = ::getgrnam(name); g != nullptr && g->gr_gid != ::getegid()) {
      return g->gr_gid;
    }
  }
  return std::nullopt;
}

TEST_CASE("the socket is given to socket_group when it exists and kept otherwise") {
  asio::io_context io;
  TempDir dir;
  FakeControlService service(io.get_executor());
  ControlServerOptions options;
  options.socket_path = dir.path() + "/s.sock";
  options.socket_group = "odd-no-such-group";
  {
    ControlServer server(io.get_executor(), service, options);
    REQUIRE(server.listen().ok());
    struct stat st {};
    REQUIRE(::lstat(options.socket_path.c_str(), &st) == 0);
    CHECK(st.st_gid == ::getegid());
  }
  const auto gid = other_group();
  if (!gid) return;  // nothing this process may chown to
  const ::group* g = ::getgrgid(*gid);
  REQUIRE(g != nullptr);
  options.socket_group = g->gr_name;
  ControlServer server(io.get_executor(), service, options);
  REQUIRE(server.listen().ok());
  struct stat st {};
  REQUIRE(::lstat(options.socket_path.c_str(), &st) == 0);
  CHECK(st.st_gid == *gid);
  CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("a live socket is not replaced, a stale one is") {
  asio::io_context io;
  TempDir dir;
  FakeControlService service(io.get_executor());
  ControlServerOptions options;
  options.socket_path = dir.path() + "/s.sock";
  options.socket_group.clear();
  {
    ControlServer first(io.get_executor(), service, options);
    REQUIRE(first.listen().ok());
    ControlServer second(io.get_executor(), service, options);
    const Status refused = second.listen();
    CHECK(refused.code() == Code::kFailedPrecondition);
    CHECK(refused.message() == "another oddd is already listening on " + options.socket_path);
    CHECK(std::filesystem::exists(options.socket_path));
  }
  CHECK_FALSE(std::filesystem::exists(options.socket_path));

  // A socket file left behind by a process that is gone.
  {
    asio::local::stream_protocol::acceptor leftover(io);
    leftover.open();
    leftover.bind(asio::local::stream_protocol::endpoint(options.socket_path));
    leftover.listen();
  }
  REQUIRE(std::filesystem::is_socket(options.socket_path));
  ControlServer server(io.get_executor(), service, options);
  const Status replaced = server.listen();
  CHECK_MESSAGE(replaced.ok(), replaced.to_string());

  const std::string file = dir.path() + "/plain";
  std::fclose(std::fopen(file.c_str(), "w"));
  options.socket_path = file;
  ControlServer wrong(io.get_executor(), service, options);
  const Status not_socket = wrong.listen();
  CHECK(not_socket.code() == Code::kFailedPrecondition);
  CHECK(not_socket.message().find(file) != std::string::npos);
  CHECK(std::filesystem::exists(file));
}

TEST_CASE("an adopted listening socket is served and left in place") {
  asio::io_context io;
  TempDir dir;
  FakeControlService service(io.get_executor());
  const std::string path = dir.path() + "/adopted.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::copy(path.begin(), path.end(), address.sun_path);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(fd, 16) == 0);

  ControlServerOptions options;
  options.socket_path.clear();
  ControlServer server(io.get_executor(), service, options);
  REQUIRE(server.adopt(fd).ok());
  CHECK(server.socket_path() == path);
  bool run_ended = false;
  asio::co_spawn(io, server.run(), [&](std::exception_ptr) { run_ended = true; });
  std::optional<Response> got;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        Client client(io.get_executor());
        co_await client.open(path);
        co_await client.send(request("GET", "/v1/version"));
        got = co_await client.response();
        server.stop();
      },
      asio::detached);
  io.run();
  REQUIRE(got.has_value());
  CHECK(got->status == 200);
  CHECK(run_ended);
  CHECK(std::filesystem::exists(path));

  const int not_listening = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ControlServer other(io.get_executor(), service, options);
  CHECK(other.adopt(not_listening).code() == Code::kInvalidArgument);
  ::close(not_listening);
}

TEST_CASE("curl --unix-socket reads /v1/version") {
  asio::io_context io;
  TempDir dir;
  FakeControlService service(io.get_executor());
  ControlServerOptions options;
  options.socket_path = dir.path() + "/s.sock";
  options.socket_group.clear();
  ControlServer server(io.get_executor(), service, options);
  REQUIRE(server.listen().ok());
  asio::co_spawn(io, server.run(), asio::detached);
  std::thread loop([&] { io.run(); });

  const std::string command =
      "curl -sS --max-time 10 -w '\\n%{http_code} %{content_type}' "
      "--unix-socket " +
      options.socket_path + " http://localhost/v1/version 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe != nullptr) {
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  }
  const int rc = pipe != nullptr ? ::pclose(pipe) : -1;
  asio::post(io, [&] { server.stop(); });
  loop.join();

  CHECK_MESSAGE(rc == 0, output);
  const std::size_t last = output.rfind('\n');
  REQUIRE(last != std::string::npos);
  CHECK(output.substr(last + 1) == "200 application/json");
  const std::string body = output.substr(0, last);
  CHECK(Json::parse(body)["version"] == "0.1.0");
}

// ---- Pure request interpretation --------------------------------------------------------------

TEST_CASE("route resolves every endpoint with its captures and query") {
  auto logs = route("GET", run_path("/jobs/test-ubuntu%3A22.04/logs?stream=stderr&follow=true"));
  REQUIRE(logs.has_value());
  CHECK(logs->route == Route::kLogs);
  CHECK(logs->run_id == kRunId);
  CHECK(logs->job_key == "test-ubuntu:22.04");
  CHECK(logs->query.stream == LogSelect::kStderr);
  CHECK(logs->query.follow);

  struct Case {
    std::string method;
    std::string target;
    Route route;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/version", Route::kVersion},
      {"GET", "/v1/health", Route::kHealth},
      {"POST", "/v1/runs", Route::kSubmit},
      {"GET", "/v1/runs", Route::kListRuns},
      {"GET", run_path(), Route::kGetRun},
      {"POST", run_path("/cancel"), Route::kCancelRun},
      {"GET", run_path("/events"), Route::kEvents},
      {"GET", run_path("/jobs/k/logs"), Route::kLogs},
      {"GET", run_path("/summary"), Route::kSummary},
      {"GET", run_path("/artifacts"), Route::kArtifacts},
  };
  for (const auto& c : cases) {
    CAPTURE(c.target);
    auto routed = route(c.method, c.target);
    REQUIRE(routed.has_value());
    CHECK(routed->route == c.route);
  }

  auto list = route("GET", "/v1/runs?&state=failed&");
  REQUIRE(list.has_value());
  CHECK(list->query.state == proto::RunState::kFailed);
  CHECK(list->query.limit == 50);
  auto events = route("GET", run_path("/events?since=18446744073709551615&follow=0"));
  REQUIRE(events.has_value());
  CHECK(events->query.since == 18446744073709551615u);
  CHECK_FALSE(events->query.follow);
}

TEST_CASE("route rejects what it cannot serve with the status to answer") {
  struct Case {
    std::string method;
    std::string target;
    unsigned status;
  };
  const std::vector<Case> cases = {
      {"GET", "/v1/runs/", 404},
      {"GET", "//v1/version", 404},
      {"GET", "/v1/version/", 404},
      {"GET", "/", 404},
      {"GET", "http://localhost/v1/version", 400},
      {"GET", "*", 400},
      {"GET", "", 400},
      {"HEAD", "/v1/version", 405},
      {"PUT", run_path("/jobs/k/logs"), 405},
      {"GET", run_path("/jobs//logs"), 404},
      {"GET", run_path("/jobs/%zz/logs"), 400},
      {"GET", "/v1/runs?limit=%4", 400},
      {"GET", "/v1/runs?limit=+5", 400},
      {"GET", "/v1/runs/20261122-142030z-3f2a", 404},
  };
  for (const auto& c : cases) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    auto routed = route(c.method, c.target);
    REQUIRE_FALSE(routed.has_value());
    CHECK(routed.error().http_status == c.status);
    CHECK(proto::http_status(routed.error().error.code) == (c.status == 405 ? 400u : c.status));
  }
  auto wrong_method = route("PATCH", "/v1/runs");
  REQUIRE_FALSE(wrong_method.has_value());
  CHECK(wrong_method.error().allow == "GET, POST");
}

TEST_CASE("parse_submit_body accepts JSON only and bounds its shape") {
  auto ok = parse_submit_body("Application/JSON; charset=utf-8", kSubmitBody);
  REQUIRE(ok.has_value());
  CHECK(ok->detach);

  CHECK(parse_submit_body("", kSubmitBody).error().message().find("got none") != std::string::npos);

  auto invalid = parse_submit_body("application/json", "{\"a\": [1, 2,]}");
  REQUIRE_FALSE(invalid.has_value());
  CHECK(invalid.error().message().find("not valid JSON at byte 13") != std::string::npos);

  std::string deep = R"({"spec_text": "x", "workdir": "/w", "vars": )";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}";
  auto nested = parse_submit_body("application/json", deep);
  REQUIRE_FALSE(nested.has_value());
  CHECK(nested.error().message().find("nested deeper than") != std::string::npos);

  std::string wide = R"({"spec_text": "x", "workdir": "/w", "vars": {)";
  for (int i = 0; i < 1001; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\": \"v\"";
  wide += "}}";
  auto many = parse_submit_body("application/json", wide);
  REQUIRE_FALSE(many.has_value());
  CHECK(many.error().message().find("more than 1000 keys") != std::string::npos);

  auto unknown = parse_submit_body("application/json", R"({"spec_txt": "x", "workdir": "/w"})");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace odd::daemon
