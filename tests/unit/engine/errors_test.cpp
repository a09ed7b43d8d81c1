#include "engine/errors.hpp"

#include <doctest/doctest.h>

#include <boost/asio/error.hpp>
#include <boost/system/errc.hpp>

#include "engine/endpoint.hpp"

namespace odd::engine {
namespace {

namespace error = boost::asio::error;
using boost::system::errc::make_error_code;

TEST_SUITE("engine/errors") {
  TEST_CASE("dockerd's message is kept with the context and the HTTP status") {
    Status s =
        status_from_http(404, R"({"message":"No such container: odd-x"})", "start container odd-x");
    CHECK(s.code() == Code::kNotFound);
    CHECK(s.message() == "start container odd-x: dockerd: No such container: odd-x (HTTP 404)");
  }

  TEST_CASE("without context the message starts with dockerd") {
    Status s = status_from_http(400, R"({"message":"invalid reference format"})", "");
    CHECK(s.message() == "dockerd: invalid reference format (HTTP 400)");
  }

  TEST_CASE("each HTTP status maps to its code") {
    struct Case {
      unsigned http;
      Code code;
    };
    for (Case c : {Case{400, Code::kInvalidArgument}, Case{401, Code::kPermissionDenied},
                   Case{403, Code::kPermissionDenied}, Case{404, Code::kNotFound},
                   Case{409, Code::kFailedPrecondition}, Case{500, Code::kInternal},
                   Case{502, Code::kUnavailable}, Case{503, Code::kUnavailable},
                   Case{504, Code::kUnavailable}, Case{418, Code::kInternal}}) {
      CAPTURE(c.http);
      CHECK(status_from_http(c.http, R"({"message":"m"})", "ctx").code() == c.code);
    }
  }

  TEST_CASE("a 409 for a name in use is already_exists, other conflicts failed_precondition") {
    Status taken = status_from_http(
        409,
        R"({"message":"Conflict. The container name \"/odd-x\" is already in use by container \"3f2a\"."})",
        "create container odd-x");
    CHECK(taken.code() == Code::kAlreadyExists);
    Status running = status_from_http(409, R"({"message":"Container 3f2a is not running"})",
                                      "kill container 3f2a");
    CHECK(running.code() == Code::kFailedPrecondition);
  }

  TEST_CASE("a plain-text body is kept without its trailing newline") {
    Status s = status_from_http(404, "page not found\n", "inspect container x");
    CHECK(s.message() == "inspect container x: dockerd: page not found (HTTP 404)");
  }

  TEST_CASE("JSON without a message is shown as text") {
    Status s = status_from_http(500, R"({"error":"x"})", "");
    CHECK(s.message() == R"(dockerd: {"error":"x"} (HTTP 500))");
  }

  TEST_CASE("an empty body says so") {
    Status s = status_from_http(503, "", "ping dockerd");
    CHECK(s.code() == Code::kUnavailable);
    CHECK(s.message() == "ping dockerd: dockerd: empty response (HTTP 503)");
  }

  TEST_CASE("a refused or missing socket means no dockerd is listening") {
    for (auto ec : {boost::system::error_code(error::connection_refused),
                    make_error_code(boost::system::errc::no_such_file_or_directory)}) {
      CAPTURE(ec.message());
      Status s = status_from_transport(ec, "unix:///run/d.sock", "ping dockerd");
      CHECK(s.code() == Code::kUnavailable);
      CHECK(s.message().starts_with("ping dockerd: no dockerd listening on unix:///run/d.sock ("));
    }
  }

  TEST_CASE("a socket that refuses us is permission_denied and names it") {
    Status s = status_from_transport(make_error_code(boost::system::errc::permission_denied),
                                     "unix:///var/run/docker.sock", "");
    CHECK(s.code() == Code::kPermissionDenied);
    CHECK(s.message().starts_with("cannot connect to unix:///var/run/docker.sock: "));
  }

  TEST_CASE("an aborted operation is cancelled") {
    Status s = status_from_transport(error::operation_aborted, "unix:///d.sock", "wait");
    CHECK(s.code() == Code::kCancelled);
    CHECK(s.message() == "wait: cancelled");
  }

  TEST_CASE("a timeout is deadline_exceeded and names the target") {
    Status s = status_from_transport(error::timed_out, "tcp://10.0.0.5:2375", "list containers");
    CHECK(s.code() == Code::kDeadlineExceeded);
    CHECK(s.message() == "list containers: tcp://10.0.0.5:2375: timed out");
  }

  TEST_CASE("a connection closed by dockerd is unavailable") {
    Status s = status_from_transport(error::eof, "unix:///d.sock", "");
    CHECK(s.code() == Code::kUnavailable);
    CHECK(s.message() == "unix:///d.sock: connection closed by dockerd");
  }

  TEST_CASE("other transport failures are unavailable with the system's words") {
    boost::system::error_code ec = error::connection_reset;
    Status s = status_from_transport(ec, "unix:///d.sock", "ctx");
    CHECK(s.code() == Code::kUnavailable);
    CHECK(s.retryable());
    CHECK(s.message() == "ctx: unix:///d.sock: " + ec.message());
  }
}

TEST_SUITE("engine/endpoint") {
  TEST_CASE("a unix:// address is a socket path") {
    auto ep = parse_endpoint("unix:///var/run/docker.sock");
    REQUIRE(ep.has_value());
    CHECK(ep->kind == Endpoint::Kind::kUnix);
    CHECK(ep->path == "/var/run/docker.sock");
    CHECK(ep->to_string() == "unix:///var/run/docker.sock");
  }

  TEST_CASE("a bare absolute path is a socket path") {
    auto ep = parse_endpoint("/tmp/odd/d.sock");
    REQUIRE(ep.has_value());
    CHECK(ep->kind == Endpoint::Kind::kUnix);
    CHECK(ep->path == "/tmp/odd/d.sock");
  }

  TEST_CASE("tcp:// and http:// addresses give host and port") {
    for (const char* text :
         {"tcp://10.0.0.5:2375", "http://10.0.0.5:2375", "tcp://10.0.0.5:2375/"}) {
      CAPTURE(text);
      auto ep = parse_endpoint(text);
      REQUIRE(ep.has_value());
      CHECK(ep->kind == Endpoint::Kind::kTcp);
      CHECK(ep->host == "10.0.0.5");
      CHECK(ep->port == 2375);
      CHECK(ep->to_string() == "tcp://10.0.0.5:2375");
    }
  }

  TEST_CASE("a bracketed IPv6 host loses its brackets") {
    auto ep = parse_endpoint("tcp://[::1]:2375");
    REQUIRE(ep.has_value());
    CHECK(ep->kind == Endpoint::Kind::kTcp);
    CHECK(ep->host == "::1");
    CHECK(ep->port == 2375);
  }

  TEST_CASE("a missing or bad port is an invalid argument naming the address") {
    for (const char* text : {"tcp://host", "tcp://host:", "tcp://host:0", "tcp://host:65536",
                             "tcp://host:2375x", "tcp://:2375"}) {
      CAPTURE(text);
      auto ep = parse_endpoint(text);
      REQUIRE_FALSE(ep.has_value());
      CHECK(ep.error().code() == Code::kInvalidArgument);
      CHECK(ep.error().message().find(text) != std::string::npos);
    }
  }

  TEST_CASE("an unknown scheme or relative path is refused with the accepted forms") {
    for (const char* text : {"ssh://user@host", "npipe:////./pipe/docker", "docker.sock",
                             "unix://relative.sock", ""}) {
      CAPTURE(text);
      auto ep = parse_endpoint(text);
      REQUIRE_FALSE(ep.has_value());
      CHECK(ep.error().code() == Code::kInvalidArgument);
      CHECK(ep.error().message().find("unix:///path/to/docker.sock or tcp://host:port") !=
            std::string::npos);
    }
  }
}

}  // namespace
}  // namespace odd::engine
