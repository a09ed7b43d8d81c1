#include "engine/api.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace odd::engine {
namespace {

TEST_SUITE("engine/api") {
  TEST_CASE("a path segment keeps safe characters and encodes '/', spaces and non-ASCII") {
    CHECK(encode_path_segment("odd-20261122-142030Z-3f2a-test-arch") ==
          "odd-20261122-142030Z-3f2a-test-arch");
    CHECK(encode_path_segment("a:b@c") == "a:b@c");
    CHECK(encode_path_segment("a b/c") == "a%20b%2Fc");
    CHECK(encode_path_segment("\xc3\xa9") == "%C3%A9");
    CHECK(encode_path_segment("50%?#") == "50%25%3F%23");
  }

  TEST_CASE("an image path keeps the '/' and ':' of a registry reference") {
    CHECK(encode_path("host:5000/team/app:1.0") == "host:5000/team/app:1.0");
    CHECK(encode_path("app@sha256:abc") == "app@sha256:abc");
    CHECK(encode_path("a b?") == "a%20b%3F");
  }

  TEST_CASE("a query value encodes everything but unreserved characters") {
    CHECK(encode_query_component("Az09-._~") == "Az09-._~");
    CHECK(encode_query_component("/tmp/x y") == "%2Ftmp%2Fx%20y");
    CHECK(encode_query_component("a=b&c+d") == "a%3Db%26c%2Bd");
    CHECK(encode_query_component(R"({"label":["a=b"]})") ==
          "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
  }

  TEST_CASE("an empty query renders as nothing") { CHECK(Query().to_string().empty()); }

  TEST_CASE("a query renders its parameters in insertion order") {
    Query query;
    query.add("a", "1").add("b", "x");
    CHECK(query.to_string() == "?a=1&b=x");
    CHECK_FALSE(query.empty());
  }

  TEST_CASE("query booleans are 1 and 0 and integers are decimal") {
    Query query;
    query.add_bool("force", true).add_bool("v", false).add_int("t", 10).add_int("n", -3);
    CHECK(query.to_string() == "?force=1&v=0&t=10&n=-3");
  }

  TEST_CASE("query keys and values are encoded") {
    Query query;
    query.add("path", "/var/log/app log").add("a b", "c");
    CHECK(query.to_string() == "?path=%2Fvar%2Flog%2Fapp%20log&a%20b=c");
  }

  TEST_CASE("filters use the map-of-arrays form") {
    CHECK(filters_json({{"label", {"a=b"}}}) == R"({"label":["a=b"]})");
    CHECK(filters_json({{"type", {"container"}}, {"label", {"odd.run", "odd.job=test"}}}) ==
          R"({"label":["odd.run","odd.job=test"],"type":["container"]})");
  }

  TEST_CASE("filters without values are left out") {
    CHECK(filters_json({}) == "{}");
    CHECK(filters_json({{"label", {}}, {"name", {"x"}}}) == R"({"name":["x"]})");
  }

  TEST_CASE("filter values are JSON-escaped") {
    CHECK(filters_json({{"label", {"q=\"x\""}}}) == R"({"label":["q=\"x\""]})");
  }

  TEST_CASE("an API version parses as major and minor") {
    auto v = parse_api_version("1.41");
    REQUIRE(v.has_value());
    CHECK(v->major == 1);
    CHECK(v->minor == 41);
    CHECK(v->to_string() == "1.41");
  }

  TEST_CASE("malformed API versions are invalid arguments") {
    for (const char* text : {"", "1", "1.", ".41", "x.41", "1.41.2", "1.4x", "-1.41", "1.-2"}) {
      CAPTURE(text);
      auto v = parse_api_version(text);
      REQUIRE_FALSE(v.has_value());
      CHECK(v.error().code() == Code::kInvalidArgument);
    }
  }

  TEST_CASE("API versions compare numerically, not as text") {
    auto v = [](const char* text) { return parse_api_version(text).value(); };
    CHECK(v("1.41") < v("1.43"));
    CHECK(v("1.43") < v("1.100"));
    CHECK(v("1.9") < v("1.10"));
    CHECK(v("1.100") < v("2.0"));
    CHECK(v("1.41") == v("1.41"));
  }

  TEST_CASE("an older dockerd is refused with the versions and the Docker release needed") {
    auto chosen = negotiate_api_version("1.40", "1.12", "unix:///var/run/docker.sock");
    REQUIRE_FALSE(chosen.has_value());
    CHECK(chosen.error().code() == Code::kFailedPrecondition);
    CHECK(chosen.error().message() ==
          "dockerd at unix:///var/run/docker.sock speaks Engine API 1.40; odd needs 1.41 or newer "
          "(Docker 20.10+)");
  }

  TEST_CASE("a newer dockerd is spoken to at kMaxApiVersion") {
    CHECK(negotiate_api_version("1.45", "1.24").value() == kMaxApiVersion);
    CHECK(negotiate_api_version("1.100", "").value() == kMaxApiVersion);
  }

  TEST_CASE("a dockerd within the supported range is spoken to at its own version") {
    CHECK(negotiate_api_version(kMinApiVersion, "1.12").value() == kMinApiVersion);
    CHECK(negotiate_api_version(kMaxApiVersion, "1.12").value() == kMaxApiVersion);
    CHECK(negotiate_api_version("1.42", "").value() == "1.42");
  }

  TEST_CASE("a dockerd that dropped every version odd speaks is refused") {
    auto chosen = negotiate_api_version("1.60", "1.50", "tcp://10.0.0.5:2375");
    REQUIRE_FALSE(chosen.has_value());
    CHECK(chosen.error().code() == Code::kFailedPrecondition);
    CHECK(chosen.error().message() ==
          "dockerd at tcp://10.0.0.5:2375 needs Engine API 1.50 or newer; odd speaks 1.41 to 1.43");
  }

  TEST_CASE("an unreadable server version names the daemon") {
    auto chosen = negotiate_api_version("banana", "", "unix:///run/d.sock");
    REQUIRE_FALSE(chosen.has_value());
    CHECK(chosen.error().code() == Code::kInvalidArgument);
    CHECK(chosen.error().message().starts_with("dockerd at unix:///run/d.sock: "));
  }

  TEST_CASE("versioned paths put the API version first") {
    CHECK(versioned_path("1.41", "/containers/x/start") == "/v1.41/containers/x/start");
    CHECK(versioned_path("1.43", "/events?since=1") == "/v1.43/events?since=1");
  }

  TEST_CASE("full ids are shortened to 12 hex digits; names stay whole") {
    const std::string id = "3f2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";
    CHECK(short_id(id) == "3f2a1b4c5d6e");
    CHECK(short_id("sha256:" + id) == "3f2a1b4c5d6e");
    CHECK(short_id("odd-20261122-142030Z-3f2a-test-arch") == "odd-20261122-142030Z-3f2a-test-arch");
    CHECK(short_id("3f2a1b") == "3f2a1b");
  }

  TEST_CASE("image references split into repository and tag or digest") {
    using R = ImageReference;
    CHECK(split_image_reference("busybox") == R{"busybox", "latest"});
    CHECK(split_image_reference("busybox:1.36") == R{"busybox", "1.36"});
    CHECK(split_image_reference("library/busybox:1.36") == R{"library/busybox", "1.36"});
    CHECK(split_image_reference("host:5000/repo") == R{"host:5000/repo", "latest"});
    CHECK(split_image_reference("host:5000/team/repo:tag") == R{"host:5000/team/repo", "tag"});
    CHECK(split_image_reference("repo@sha256:abcd") == R{"repo", "sha256:abcd"});
    CHECK(split_image_reference("host:5000/repo@sha256:abcd") ==
          R{"host:5000/repo", "sha256:abcd"});
    CHECK(split_image_reference("repo:tag@sha256:abcd") == R{"repo", "sha256:abcd"});
  }

  TEST_CASE("timestamps are seconds and nine digits of nanoseconds") {
    CHECK(format_unix_nanos(1700000000123456789) == "1700000000.123456789");
    CHECK(format_unix_nanos(1700000000000000005) == "1700000000.000000005");
    CHECK(format_unix_nanos(0) == "0.000000000");
  }

  TEST_CASE("a pull refused by the registry is permission_denied in dockerd's words") {
    Status s = status_from_stream_error(
        "pull access denied for nope, repository does not exist or may require 'docker login'",
        "pull image nope");
    CHECK(s.code() == Code::kPermissionDenied);
    CHECK(s.message() ==
          "pull image nope: dockerd: pull access denied for nope, repository does not exist or "
          "may require 'docker login'");
    CHECK(status_from_stream_error("unauthorized: authentication required", "").code() ==
          Code::kPermissionDenied);
  }

  TEST_CASE("a missing tag or manifest is not_found") {
    CHECK(status_from_stream_error("manifest for busybox:nope not found: manifest unknown", "x")
              .code() == Code::kNotFound);
    CHECK(status_from_stream_error("manifest unknown", "x").code() == Code::kNotFound);
  }

  TEST_CASE("an unreachable registry is unavailable, so it is retried") {
    Status s = status_from_stream_error(
        "Get \"https://registry-1.docker.io/v2/\": dial tcp: lookup registry-1.docker.io: no such "
        "host",
        "pull image busybox:1.36");
    CHECK(s.code() == Code::kUnavailable);
    CHECK(s.retryable());
    CHECK(s.message().starts_with("pull image busybox:1.36: dockerd: Get "));
  }

  TEST_CASE("JSON lines cut anywhere across reads come out whole") {
    JsonLineBuffer lines;
    REQUIRE(lines.feed(R"({"a":)").ok());
    CHECK_FALSE(lines.next());
    REQUIRE(lines.feed("1}\r\n{\"b\"").ok());
    CHECK(lines.next() == std::optional<std::string>(R"({"a":1})"));
    CHECK_FALSE(lines.next());
    REQUIRE(lines.feed(":2}\n{\"c\":3}\n").ok());
    CHECK(lines.next() == std::optional<std::string>(R"({"b":2})"));
    CHECK(lines.next() == std::optional<std::string>(R"({"c":3})"));
    CHECK_FALSE(lines.next());
    CHECK(lines.pending_bytes() == 0);
  }

  TEST_CASE("JSON lines fed one byte at a time come out whole") {
    const std::string input = "{\"x\":1}\n\n{\"y\":22}\r\n";
    JsonLineBuffer lines;
    std::vector<std::string> out;
    for (char c : input) {
      REQUIRE(lines.feed(std::string_view(&c, 1)).ok());
      while (auto line = lines.next()) out.push_back(*line);
    }
    CHECK(out == std::vector<std::string>{"{\"x\":1}", "", "{\"y\":22}"});
  }

  TEST_CASE("an unterminated last JSON line is returned at the end of the stream") {
    JsonLineBuffer lines;
    REQUIRE(lines.feed("{\"a\":1}\n{\"b\":2}").ok());
    CHECK(lines.next() == std::optional<std::string>("{\"a\":1}"));
    CHECK_FALSE(lines.next());
    CHECK(lines.finish() == std::optional<std::string>("{\"b\":2}"));
    CHECK_FALSE(lines.finish());
  }

  TEST_CASE("a JSON line longer than the bound is an error, not a growing buffer") {
    JsonLineBuffer lines(8);
    CHECK(lines.feed("12345678\n1234").ok());
    CHECK(lines.feed("5678").ok());
    Status s = lines.feed("9");
    CHECK(s.code() == Code::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace odd::engine
