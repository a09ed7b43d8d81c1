#include "engine/api.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

namespace odd::engine {

namespace {

// The Docker release that first shipped kMinApiVersion, for messages that tell a user what to
// install.
constexpr std::string_view kMinDockerRelease = "20.10";

bool is_unreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

bool is_path_safe(char c) {
  return is_unreserved(c) || std::string_view(":@!$&'()*+,;=").find(c) != std::string_view::npos;
}

template <class KeepFn>
std::string percent_encode(std::string_view text, KeepFn keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (keep(c)) {
      out += c;
    } else {
      auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0f];
    }
  }
  return out;
}

bool is_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

bool contains_nocase(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                        [](char a, char b) {
                          return std::tolower(static_cast<unsigned char>(a)) ==
                                 std::tolower(static_cast<unsigned char>(b));
                        });
  return it != haystack.end();
}

std::string dockerd_at(std::string_view target) {
  if (target.empty()) return "dockerd";
  return "dockerd at " + std::string(target);
}

}  // namespace

std::string encode_path_segment(std::string_view segment) {
  return percent_encode(segment, is_path_safe);
}

std::string encode_path(std::string_view path) {
  return percent_encode(path, [](char c) { return c == '/' || is_path_safe(c); });
}

std::string encode_query_component(std::string_view value) {
  return percent_encode(value, is_unreserved);
}

Query& Query::add(std::string_view key, std::string_view value) {
  text_ += text_.empty() ? '?' : '&';
  text_ += encode_query_component(key);
  text_ += '=';
  text_ += encode_query_component(value);
  return *this;
}

Query& Query::add_bool(std::string_view key, bool value) { return add(key, value ? "1" : "0"); }

Query& Query::add_int(std::string_view key, std::int64_t value) {
  return add(key, std::to_string(value));
}

std::string Query::to_string() const { return text_; }

std::string filters_json(const std::map<std::string, std::vector<std::string>>& filters) {
  auto doc = nlohmann::json::object();
  for (const auto& [key, values] : filters) {
    if (!values.empty()) doc[key] = values;
  }
  return doc.dump();
}

std::string ApiVersion::to_string() const {
  return std::to_string(major) + "." + std::to_string(minor);
}

Result<ApiVersion> parse_api_version(std::string_view text) {
  auto bad = [&] {
    return invalid_argument("unreadable Engine API version \"" + std::string(text) +
                            "\" (expected MAJOR.MINOR such as 1.41)");
  };
  auto dot = text.find('.');
  if (dot == std::string_view::npos) return bad();
  auto parse_part = [](std::string_view part, std::uint32_t& out) {
    if (part.empty()) return false;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return ec == std::errc() && end == part.data() + part.size();
  };
  ApiVersion version;
  if (!parse_part(text.substr(0, dot), version.major) ||
      !parse_part(text.substr(dot + 1), version.minor)) {
    return bad();
  }
  return version;
}

Result<std::string> negotiate_api_version(std::string_view server_version,
                                          std::string_view server_min_version,
                                          std::string_view target) {
  auto server = parse_api_version(server_version);
  if (!server) return server.error().with_context(dockerd_at(target));
  // Both constants are literals of the right form; a failure here is a broken build.
  const ApiVersion ours_min = parse_api_version(kMinApiVersion).value();
  const ApiVersion ours_max = parse_api_version(kMaxApiVersion).value();

  if (*server < ours_min) {
    return failed_precondition(dockerd_at(target) + " speaks Engine API " + server->to_string() +
                               "; odd needs " + ours_min.to_string() + " or newer (Docker " +
                               std::string(kMinDockerRelease) + "+)");
  }
  if (!server_min_version.empty()) {
    auto server_min = parse_api_version(server_min_version);
    if (!server_min) return server_min.error().with_context(dockerd_at(target));
    if (*server_min > ours_max) {
      return failed_precondition(dockerd_at(target) + " needs Engine API " +
                                 server_min->to_string() + " or newer; odd speaks " +
                                 ours_min.to_string() + " to " + ours_max.to_string());
    }
  }
  return std::min(*server, ours_max).to_string();
}

std::string versioned_path(std::string_view api_version, std::string_view path) {
  std::string out = "/v";
  out += api_version;
  out += path;
  return out;
}

std::string short_id(std::string_view id) {
  std::string_view hex = id;
  if (hex.starts_with("sha256:")) hex.remove_prefix(7);
  if (hex.size() == 64 && is_hex(hex)) return std::string(hex.substr(0, 12));
  return std::string(id);
}

ImageReference split_image_reference(std::string_view reference) {
  ImageReference out;
  std::string_view name = reference;
  if (auto at = name.find('@'); at != std::string_view::npos) {
    out.tag = std::string(name.substr(at + 1));
    name = name.substr(0, at);
  }
  // A ':' before the last '/' is a registry port, not a tag.
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  bool has_tag =
      colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash);
  if (has_tag) {
    // With a digest, the digest alone identifies the image; dockerd takes it in `tag`.
    if (out.tag.empty()) out.tag = std::string(name.substr(colon + 1));
    name = name.substr(0, colon);
  }
  out.repository = std::string(name);
  if (out.tag.empty()) out.tag = "latest";
  return out;
}

std::string format_unix_nanos(std::int64_t unix_nanos) {
  constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
  std::int64_t seconds = unix_nanos / kNanosPerSecond;
  std::int64_t nanos = unix_nanos % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    --seconds;
  }
  std::string fraction = std::to_string(nanos);
  return std::to_string(seconds) + "." + std::string(9 - fraction.size(), '0') + fraction;
}

Status status_from_stream_error(std::string_view message, std::string_view context) {
  std::string text = "dockerd: " + std::string(message);
  if (!context.empty()) text = std::string(context) + ": " + text;
  if (contains_nocase(message, "pull access denied") || contains_nocase(message, "unauthorized") ||
      contains_nocase(message, "denied: requested access")) {
    return permission_denied(std::move(text));
  }
  if (contains_nocase(message, "not found") || contains_nocase(message, "manifest unknown") ||
      contains_nocase(message, "no such image")) {
    return not_found(std::move(text));
  }
  return unavailable(std::move(text));
}

Status JsonLineBuffer::feed(std::string_view bytes) {
  if (start_ > 0) {
    buffer_.erase(0, start_);
    scan_ -= start_;
    start_ = 0;
  }
  buffer_.append(bytes);
  auto newline = bytes.rfind('\n');
  partial_ =
      newline == std::string_view::npos ? partial_ + bytes.size() : bytes.size() - newline - 1;
  if (partial_ > max_line_) {
    return failed_precondition("a line longer than " + std::to_string(max_line_) + " bytes");
  }
  return ok_status();
}

std::optional<std::string> JsonLineBuffer::next() {
  auto newline = buffer_.find('\n', std::max(start_, scan_));
  if (newline == std::string::npos) {
    scan_ = buffer_.size();
    return std::nullopt;
  }
  std::size_t end = newline;
  if (end > start_ && buffer_[end - 1] == '\r') --end;
  std::string line = buffer_.substr(start_, end - start_);
  start_ = scan_ = newline + 1;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = scan_ = 0;
  }
  return line;
}

std::optional<std::string> JsonLineBuffer::finish() {
  if (pending_bytes() == 0) return std::nullopt;
  std::string line = buffer_.substr(start_);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  buffer_.clear();
  start_ = scan_ = partial_ = 0;
  return line;
}

}  // namespace odd::engine
