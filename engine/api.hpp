#pragma once
// Pure helpers for speaking the Docker Engine API: URL encoding, query strings, dockerd's
// `filters` JSON, API version negotiation, image reference splitting and JSON-lines framing.
// No I/O; values only, safe from any thread.

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace odd::engine {

inline constexpr std::string_view kMinApiVersion = "1.41";  // Docker 20.10, Debian 12
inline constexpr std::string_view kMaxApiVersion = "1.43";

// Percent-encodes one path segment: everything but RFC 3986 unreserved characters and
// ":@!$&'()*+,;=" is encoded, '/' included.
std::string encode_path_segment(std::string_view segment);

// As encode_path_segment(), but keeps '/': for image references such as "host:5000/team/app:1",
// which dockerd routes as several segments.
std::string encode_path(std::string_view path);

// Percent-encodes a query key or value: everything but unreserved characters.
std::string encode_query_component(std::string_view value);

// Builds a query string in insertion order, encoding keys and values.
class Query {
 public:
  Query& add(std::string_view key, std::string_view value);
  Query& add_bool(std::string_view key, bool value);  // "1" or "0", as the docker CLI sends
  Query& add_int(std::string_view key, std::int64_t value);
  bool empty() const { return text_.empty(); }
  // "?a=1&b=x", or "" when nothing was added.
  std::string to_string() const;

 private:
  std::string text_;
};

// dockerd's `filters` parameter in the map-of-arrays form every API since 1.24 accepts:
// {"label":["a=b","c"],"type":["container"]}. Keys with no values are left out.
std::string filters_json(const std::map<std::string, std::vector<std::string>>& filters);

// An Engine API version such as "1.41". Ordered numerically: 1.41 < 1.43 < 1.100.
struct ApiVersion {
  std::uint32_t major = 0;
  std::uint32_t minor = 0;

  std::string to_string() const;
  friend auto operator<=>(const ApiVersion&, const ApiVersion&) = default;
};

// Parses "MAJOR.MINOR"; invalid_argument for anything else.
Result<ApiVersion> parse_api_version(std::string_view text);

// The API version to use with a dockerd that speaks `server_version` and accepts nothing older
// than `server_min_version` ("" when it did not say): the lower of the server's and
// kMaxApiVersion. failed_precondition when the two have no version in common (the message names
// `target` and the Docker release needed); invalid_argument when a version is unreadable.
Result<std::string> negotiate_api_version(std::string_view server_version,
                                          std::string_view server_min_version,
                                          std::string_view target = "");

// "/v1.41" + path: path starts with '/' and is already encoded.
std::string versioned_path(std::string_view api_version, std::string_view path);

// How messages name an object, as the docker CLI does: a 64-hex id (with or without "sha256:")
// becomes its first 12 hex digits; names and short ids are unchanged.
std::string short_id(std::string_view id);

// An image reference split the way /images/create takes it: "repo:tag" → {"repo", "tag"},
// "host:5000/repo" → {"host:5000/repo", "latest"}, "repo@sha256:..." → {"repo", "sha256:..."}.
struct ImageReference {
  std::string repository;
  std::string tag;  // a tag, or a digest; "latest" when the reference has neither

  friend bool operator==(const ImageReference&, const ImageReference&) = default;
};
ImageReference split_image_reference(std::string_view reference);

// dockerd's timestamp form for `since`/`until`: "<seconds>.<9-digit nanoseconds>".
std::string format_unix_nanos(std::int64_t unix_nanos);

// An `error`/`errorDetail` message from a progress stream (pull, build) as a Status:
// permission_denied for "pull access denied"/"unauthorized", not_found for "not found" and
// "manifest unknown", unavailable otherwise (a registry that cannot be reached). The message
// reads "<context>: dockerd: <message>".
Status status_from_stream_error(std::string_view message, std::string_view context);

// Splits a JSON-lines stream (pull and build progress, events) into whole messages ('\n', a
// trailing '\r' removed) however the bytes were cut across reads. Unlike the log LineSplitter
// (demux.hpp) it never cuts a line: a message longer than `max_line` is an error instead.
class JsonLineBuffer {
 public:
  explicit JsonLineBuffer(std::size_t max_line = 4u << 20) : max_line_(max_line) {}

  // Appends bytes; failed_precondition when the pending partial line exceeds max_line.
  Status feed(std::string_view bytes);
  // The next complete line, if any.
  std::optional<std::string> next();
  // At the end of the stream: the unterminated last line, if any.
  std::optional<std::string> finish();
  std::size_t pending_bytes() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  std::size_t start_ = 0;    // first byte not yet returned
  std::size_t scan_ = 0;     // bytes before this hold no '\n' after start_
  std::size_t partial_ = 0;  // length of the unterminated tail
  std::size_t max_line_;
};

}  // namespace odd::engine
