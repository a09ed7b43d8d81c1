// oddc's control-socket client against a canned daemon on a Unix socket: ordinary answers, error
// bodies, chunked NDJSON read line by line, and every way of not reaching the daemon.
#include "oddc/client.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <exception>
#include <functional>

#include "oddc/exit_codes.hpp"
#include "tests/unit/oddc/fake_daemon.hpp"
#include "tests/unit/oddc/test_io.hpp"

namespace odd::oddc {
namespace {

using testing::chunk;
using testing::chunked_head;
using testing::error_body;
using testing::FakeDaemon;
using testing::http_response;
using testing::kLastChunk;
using testing::Request;
using testing::send;
using testing::Socket;

// Runs `body` with a Client for `socket_path` on a fresh io_context and returns its result.
template <class T>
T with_client(const std::string& socket_path, std::function<asio::awaitable<T>(Client&)> body,
              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  asio::io_context io;
  Client client(io.get_executor(), socket_path, timeout);
  std::optional<T> result;
  std::exception_ptr failure;
  asio::co_spawn(io, body(client), [&](std::exception_ptr e, T value) {
    failure = e;
    if (!e) result.emplace(std::move(value));
  });
  io.run();
  if (failure) std::rethrow_exception(failure);
  return std::move(*result);
}

using Text = Result<std::string>;

TEST_CASE("an ordinary call sends its JSON body and returns the body of a 2xx answer") {
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket, http_response(201, "{\"id\": \"20261122-142030Z-3f2a\"}\n"));
  });
  auto answer = with_client<Text>(daemon.socket_path(), [](Client& c) -> asio::awaitable<Text> {
    co_return co_await c.call("POST", "/v1/runs", "{\"x\": 1}\n");
  });
  REQUIRE(answer.has_value());
  CHECK(*answer == "{\"id\": \"20261122-142030Z-3f2a\"}\n");
  const auto requests = daemon.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].target == "/v1/runs");
  CHECK(requests[0].body == "{\"x\": 1}\n");
}

TEST_CASE("a JSON error body comes back as its code and message") {
  struct Case {
    unsigned status;
    std::string code;
    Code expected;
    int exit_code;
  };
  for (const Case& c : {Case{404, "not_found", Code::kNotFound, 4},
                        Case{400, "invalid_argument", Code::kInvalidArgument, 2},
                        Case{409, "failed_precondition", Code::kFailedPrecondition, 5},
                        Case{500, "internal", Code::kInternal, 5}}) {
    FakeDaemon daemon([c](Request, Socket& socket) -> asio::awaitable<void> {
      co_await send(socket, http_response(c.status, error_body(c.code, "no run 20261122-x")));
    });
    auto answer =
        with_client<Text>(daemon.socket_path(), [](Client& client) -> asio::awaitable<Text> {
          co_return co_await client.call("GET", "/v1/runs/20261122-x");
        });
    REQUIRE_FALSE(answer.has_value());
    CHECK(answer.error().code() == c.expected);
    CHECK(answer.error().message() == "no run 20261122-x");
    CHECK(exit_code_for(answer.error()) == c.exit_code);
  }
}

TEST_CASE("an error body that is not the API's names the HTTP status") {
  CHECK(response_error(502, "bad\ngateway\n") ==
        Status(Code::kInternal, "the daemon answered HTTP 502: bad gateway"));
  CHECK(response_error(404, "") == Status(Code::kNotFound, "the daemon answered HTTP 404"));
  CHECK(response_error(400, "{}").code() == Code::kInvalidArgument);
  CHECK(response_error(503, "busy").code() == Code::kUnavailable);
  CHECK(response_error(400, error_body("not_found", "gone")) == not_found("gone"));
}

TEST_CASE("a chunked NDJSON stream is read line by line across chunk boundaries") {
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket, chunked_head());
    co_await send(socket, chunk("{\"a\":1}\n{\"b\""));
    co_await send(socket, chunk(":2}\n"));
    co_await send(socket, chunk("\n{\"c\":3}"));
    co_await send(socket, kLastChunk);
  });
  using Lines = Result<std::vector<std::string>>;
  auto lines = with_client<Lines>(daemon.socket_path(), [](Client& c) -> asio::awaitable<Lines> {
    auto stream = co_await c.stream("GET", "/v1/runs/r/events?follow=1");
    if (!stream) co_return stream.error();
    CHECK((*stream)->status() == 200);
    std::vector<std::string> out;
    for (;;) {
      auto line = co_await (*stream)->read_line();
      if (!line) co_return line.error();
      if (!*line) break;
      out.push_back(**line);
    }
    co_return out;
  });
  REQUIRE(lines.has_value());
  CHECK(*lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}", "", "{\"c\":3}"});
}

TEST_CASE("read_some hands out the body piece by piece until it ends") {
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket, chunked_head("application/octet-stream"));
    co_await send(socket, chunk(std::string("one\0two", 7)));
    co_await send(socket, chunk("three"));
    co_await send(socket, kLastChunk);
  });
  auto bytes = with_client<Text>(daemon.socket_path(), [](Client& c) -> asio::awaitable<Text> {
    auto stream = co_await c.stream("GET", "/v1/runs/r/jobs/j/logs");
    if (!stream) co_return stream.error();
    std::string all;
    for (;;) {
      auto piece = co_await (*stream)->read_some();
      if (!piece) co_return piece.error();
      if (piece->empty()) break;
      all += *piece;
    }
    co_return all;
  });
  REQUIRE(bytes.has_value());
  CHECK(*bytes == std::string("one\0twothree", 12));
}

TEST_CASE("a stream answered with an error status returns the error") {
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket, http_response(404, error_body("not_found", "run r has no job x")));
  });
  auto status = with_client<Status>(daemon.socket_path(), [](Client& c) -> asio::awaitable<Status> {
    auto stream = co_await c.stream("GET", "/v1/runs/r/jobs/x/logs");
    co_return stream.has_value() ? ok_status() : stream.error();
  });
  CHECK(status == not_found("run r has no job x"));
}

TEST_CASE("a stream cut off before its last chunk is an error, not an end") {
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket, chunked_head());
    co_await send(socket, chunk("{\"seq\":1}\n"));
  });
  auto status = with_client<Status>(daemon.socket_path(), [](Client& c) -> asio::awaitable<Status> {
    auto stream = co_await c.stream("GET", "/v1/runs/r/events");
    if (!stream) co_return stream.error();
    auto first = co_await (*stream)->read_line();
    CHECK(first.has_value());
    auto second = co_await (*stream)->read_line();
    co_return second.has_value() ? ok_status() : second.error();
  });
  CHECK(status.code() == Code::kUnavailable);
  CHECK(status.message().find("the daemon on ") == 0);
}

TEST_CASE("closing a stream aborts the read waiting on it") {
  FakeDaemon daemon([&](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket, chunked_head());
    co_await send(socket, chunk("{\"id\":\"x\"}\n"));
    co_await testing::wait_closed(socket);
    daemon.client_left = true;
  });
  auto status = with_client<Status>(daemon.socket_path(), [](Client& c) -> asio::awaitable<Status> {
    auto stream = co_await c.stream("POST", "/v1/runs", "{}");
    if (!stream) co_return stream.error();
    auto first = co_await (*stream)->read_line();
    CHECK(first.has_value());
    ResponseStream* raw = stream->get();
    asio::post(co_await asio::this_coro::executor, [raw] { raw->close(); });
    auto second = co_await raw->read_line();
    co_return second.has_value() ? ok_status() : second.error();
  });
  CHECK(status.code() == Code::kUnavailable);
  CHECK(status.message().find("was closed") != std::string::npos);
}

TEST_CASE("a daemon that never answers runs into the request timeout") {
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await testing::wait_closed(socket);
  });
  auto answer = with_client<Text>(
      daemon.socket_path(),
      [](Client& c) -> asio::awaitable<Text> { co_return co_await c.call("GET", "/v1/version"); },
      std::chrono::milliseconds(50));
  REQUIRE_FALSE(answer.has_value());
  CHECK(answer.error() ==
        unavailable("the daemon on " + daemon.socket_path() + " did not answer within 50ms"));
}

TEST_CASE("a missing socket means no daemon is running there") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/missing.sock";
  auto answer = with_client<Text>(path, [](Client& c) -> asio::awaitable<Text> {
    co_return co_await c.call("GET", "/v1/version");
  });
  REQUIRE_FALSE(answer.has_value());
  CHECK(answer.error() == unavailable("no daemon running on " + path));
  CHECK(exit_code_for(answer.error()) == 3);
}

TEST_CASE("a socket file nobody listens on means no daemon is running there") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/stale.sock";
  {
    asio::io_context io;
    asio::local::stream_protocol::acceptor acceptor(io);
    const asio::local::stream_protocol::endpoint endpoint(path);
    acceptor.open(endpoint.protocol());
    acceptor.bind(endpoint);
    acceptor.listen();
  }
  auto answer = with_client<Text>(path, [](Client& c) -> asio::awaitable<Text> {
    co_return co_await c.call("GET", "/v1/version");
  });
  REQUIRE_FALSE(answer.has_value());
  CHECK(answer.error() == unavailable("no daemon running on " + path));
}

TEST_CASE("a socket the user may not open asks whether they are in group odd") {
  const std::string expected_tail = ": Permission denied (is your user in group odd?)";
  CHECK(connect_error("/run/odd/oddd.sock", asio::error::access_denied) ==
        unavailable("cannot connect to /run/odd/oddd.sock" + expected_tail));
  CHECK(connect_error("/x.sock", asio::error::connection_refused) ==
        unavailable("no daemon running on /x.sock"));
  CHECK(connect_error("/x.sock", boost::system::errc::make_error_code(
                                     boost::system::errc::no_such_file_or_directory)) ==
        unavailable("no daemon running on /x.sock"));
  CHECK(connect_error("/x.sock", asio::error::not_socket)
            .message()
            .find("cannot connect to /x.sock: ") == 0);
  if (::geteuid() == 0) return;  // root opens any socket; the mapping above is what is left
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket, http_response(200, "{}\n"));
  });
  REQUIRE(::chmod(daemon.socket_path().c_str(), 0) == 0);
  auto answer = with_client<Text>(daemon.socket_path(), [](Client& c) -> asio::awaitable<Text> {
    co_return co_await c.call("GET", "/v1/version");
  });
  REQUIRE_FALSE(answer.has_value());
  CHECK(answer.error() == unavailable("cannot connect to " + daemon.socket_path() + expected_tail));
}

TEST_CASE("a socket path too long for sun_path is refused before connecting") {
  const std::string path = "/tmp/" + std::string(120, 'x');
  auto answer = with_client<Text>(path, [](Client& c) -> asio::awaitable<Text> {
    co_return co_await c.call("GET", "/v1/version");
  });
  REQUIRE_FALSE(answer.has_value());
  CHECK(answer.error().code() == Code::kUnavailable);
  CHECK(answer.error().message().find("longer than a socket allows") != std::string::npos);
}

TEST_CASE("the socket is --socket, then $ODD_SOCKET, then the default") {
  CHECK(choose_socket(std::string("/a.sock"), std::string("/b.sock")) == "/a.sock");
  CHECK(choose_socket(std::nullopt, std::string("/b.sock")) == "/b.sock");
  CHECK(choose_socket(std::nullopt, std::string()) == "/run/odd/oddd.sock");
  CHECK(choose_socket(std::nullopt, std::nullopt) == "/run/odd/oddd.sock");
}

TEST_CASE("path segments are percent-encoded") {
  CHECK(url_encode("test-ubuntu-22.04_x~") == "test-ubuntu-22.04_x~");
  CHECK(url_encode("a/b c?d&e") == "a%2Fb%20c%3Fd%26e");
  CHECK(url_encode("\xc3\xa9") == "%C3%A9");
}

}  // namespace
}  // namespace odd::oddc
