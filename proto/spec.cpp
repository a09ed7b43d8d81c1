#include "proto/spec.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <set>

#include "proto/matrix.hpp"
#include "proto/yaml_document.hpp"

namespace odd::proto {

namespace {

using Json = nlohmann::ordered_json;
using Keys = std::initializer_list<std::string_view>;

// Bounds on what YAML aliases may expand to: the text is bounded, an alias bomb is not.
constexpr std::size_t kMaxNodes = 200'000;
constexpr std::size_t kMaxScalarBytes = 4 * kMaxSpecBytes;

constexpr std::string_view kDurationExpected = "expected a duration such as \"90s\" or \"30m\"";
constexpr std::string_view kNameRule =
    "[a-z0-9][a-z0-9._-]* (lowercase letters, digits, '.', '_', '-')";

Status fail(std::string_view path, std::string_view what) {
  std::string message(path);
  if (!message.empty()) message += ": ";
  message += what;
  return invalid_argument(std::move(message));
}

std::string quote(std::string_view text) {
  constexpr std::size_t kShown = 60;
  std::string out = "\"";
  std::size_t i = 0;
  for (; i < text.size() && i < kShown; ++i) {
    const char c = text[i];
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  if (i < text.size()) {
    // Do not end inside a UTF-8 sequence.
    while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xc0) == 0x80) out.pop_back();
    if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xc0) out.pop_back();
    out += "...";
  }
  out += '"';
  return out;
}

std::string describe(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "a mapping";
    case Json::value_t::array:
      return "a list";
    case Json::value_t::string:
      return quote(v.get_ref<const std::string&>());
    case Json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return v.dump();
    default:
      return "a value of another type";
  }
}

Status expected(std::string_view path, std::string_view what, const Json& got) {
  std::string message(what);
  message += ", got ";
  message += describe(got);
  if (got.is_number() || got.is_boolean()) {
    if (what.find("string") != std::string_view::npos) message += " (quote it)";
  }
  return fail(path, message);
}

bool plain_segment(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

bool name_ok(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_digit(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lower_digit(c) || c == '.' || c == '_' || c == '-'; });
}

bool identifier_ok(std::string_view name, bool dash) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return alpha(c) || (c >= '0' && c <= '9') || (dash && c == '-');
  });
}

// Levenshtein distance plus transpositions of neighbours ("stpes" is one edit from "steps").
std::size_t edit_distance(std::string_view a, std::string_view b) {
  const auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  const std::size_t w = b.size() + 1;
  std::vector<std::size_t> d((a.size() + 1) * w);
  for (std::size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      std::size_t best =
          std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1, d[(i - 1) * w + j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1])) {
        best = std::min(best, d[(i - 2) * w + j - 2] + 1);
      }
      d[i * w + j] = best;
    }
  }
  return d[a.size() * w + b.size()];
}

// The closest candidate within 2 edits (1 for candidates of 3 letters or fewer), or "".
template <class Range>
std::string closest(std::string_view word, const Range& candidates) {
  if (word.size() > 64) return "";
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    const std::string_view c(candidate);
    const std::size_t limit = c.size() <= 3 ? 1 : 2;
    const std::size_t d = edit_distance(word, c);
    if (d <= limit && d < best_distance) {
      best = std::string(c);
      best_distance = d;
    }
  }
  return best;
}

// Unknown keys are errors; keys of a later issue say so; both in the order of the text.
Status check_keys(const Json& object, std::string_view path, Keys known, Keys later = {}) {
  for (const auto& [key, value] : object.items()) {
    const std::string_view k(key);
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    const std::string at = spec_path_key(path, k);
    if (std::find(later.begin(), later.end(), k) != later.end()) {
      return fail(at, "not supported yet");
    }
    const std::string near = closest(k, known);
    if (!near.empty()) return fail(at, "unknown key (did you mean \"" + near + "\"?)");
    std::string list;
    for (const auto& candidate : known) {
      if (!list.empty()) list += ", ";
      list += candidate;
    }
    return fail(at, "unknown key (expected one of: " + list + ")");
  }
  return {};
}

const Json* member(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

Status missing(std::string_view path, std::string_view key, std::string_view what) {
  return fail(spec_path_key(path, key), "missing, expected " + std::string(what));
}

Result<std::string> read_string(const Json& v, std::string_view path, std::string_view what) {
  if (!v.is_string()) return expected(path, "expected " + std::string(what), v);
  return v.get<std::string>();
}

Result<std::string> read_nonempty(const Json& v, std::string_view path, std::string_view what) {
  auto s = read_string(v, path, what);
  if (s && s->empty()) return expected(path, "expected " + std::string(what), v);
  return s;
}

Result<bool> read_bool(const Json& v, std::string_view path) {
  if (!v.is_boolean()) return expected(path, "expected true or false", v);
  return v.get<bool>();
}

Result<std::int64_t> read_int(const Json& v, std::string_view path, std::int64_t lo,
                              std::int64_t hi, std::string_view what) {
  const std::string bound =
      "expected " + std::string(what) + " from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (!v.is_number_integer()) return expected(path, bound, v);
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) return expected(path, bound, v);
    return static_cast<std::int64_t>(u);
  }
  const auto i = v.get<std::int64_t>();
  if (i < lo || i > hi) return expected(path, bound, v);
  return i;
}

Result<DurationSpec> read_duration(const Json& v, std::string_view path) {
  if (!v.is_string()) return expected(path, kDurationExpected, v);
  DurationSpec out{v.get<std::string>(), std::nullopt};
  if (has_template(out.text)) return out;
  auto parsed = parse_duration(out.text);
  if (!parsed) return fail(path, parsed.error().message());
  out.value = *parsed;
  return out;
}

// Scalars stringified: what env, args, vars and matrix values hold.
Result<std::string> read_scalar(const Json& v, std::string_view path) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number()) return v.dump();
  return expected(path, "expected a string, number or boolean", v);
}

Result<std::map<std::string, std::string>> read_string_map(const Json& v, std::string_view path,
                                                           std::string_view key_rule,
                                                           bool identifiers) {
  if (!v.is_object()) return expected(path, "expected a mapping of names to values", v);
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    const std::string at = spec_path_key(path, key);
    if (identifiers && !identifier_ok(key, false)) {
      return fail(at, "expected a name matching " + std::string(key_rule) + ", got " + quote(key));
    }
    auto s = read_scalar(value, at);
    if (!s) return s.error();
    out.emplace(key, std::move(*s));
  }
  return out;
}

Result<std::optional<std::string>> optional_string(const Json& object, std::string_view path,
                                                   std::string_view key, std::string_view what) {
  const Json* v = member(object, key);
  if (v == nullptr) return std::optional<std::string>();
  auto s = read_string(*v, spec_path_key(path, key), what);
  if (!s) return s.error();
  return std::optional<std::string>(std::move(*s));
}

Result<std::string> required_string(const Json& object, std::string_view path, std::string_view key,
                                    std::string_view what) {
  const Json* v = member(object, key);
  if (v == nullptr) return missing(path, key, what);
  return read_nonempty(*v, spec_path_key(path, key), what);
}

Status optional_bool(const Json& object, std::string_view path, std::string_view key, bool& out) {
  const Json* v = member(object, key);
  if (v == nullptr) return {};
  auto b = read_bool(*v, spec_path_key(path, key));
  if (!b) return b.error();
  out = *b;
  return {};
}

Status optional_text(const Json& object, std::string_view path, std::string_view key,
                     std::string_view what, std::string& out) {
  const Json* v = member(object, key);
  if (v == nullptr) return {};
  auto s = read_string(*v, spec_path_key(path, key), what);
  if (!s) return s.error();
  out = std::move(*s);
  return {};
}

Status optional_env(const Json& object, std::string_view path, std::string_view key,
                    std::map<std::string, std::string>& out) {
  const Json* v = member(object, key);
  if (v == nullptr) return {};
  auto map = read_string_map(*v, spec_path_key(path, key), "[A-Za-z_][A-Za-z0-9_]*", true);
  if (!map) return map.error();
  out = std::move(*map);
  return {};
}

Result<BuildStep> read_build(const Json& v, std::string_view path) {
  if (auto s = check_keys(v, path,
                          {"context", "dockerfile", "args", "repository", "no_cache", "pull",
                           "target", "platform", "timeout"});
      !s.ok())
    return s;
  BuildStep out;
  auto context = required_string(v, path, "context", "a directory: the build context");
  if (!context) return context.error();
  out.context = std::move(*context);
  auto repository = required_string(v, path, "repository", "an image repository name");
  if (!repository) return repository.error();
  out.repository = std::move(*repository);
  if (auto s = optional_text(v, path, "dockerfile", "a path in the context", out.dockerfile);
      !s.ok())
    return s;
  if (auto s = optional_env(v, path, "args", out.args); !s.ok()) return s;
  if (auto s = optional_bool(v, path, "no_cache", out.no_cache); !s.ok()) return s;
  if (auto s = optional_bool(v, path, "pull", out.pull); !s.ok()) return s;
  if (auto s = optional_text(v, path, "target", "a build stage name", out.target); !s.ok())
    return s;
  if (auto s =
          optional_text(v, path, "platform", "a platform such as \"linux/amd64\"", out.platform);
      !s.ok())
    return s;
  return out;
}

Result<Command> read_command(const Json& v, std::string_view path) {
  if (v.is_string()) return Command(v.get<std::string>());
  if (!v.is_array()) return expected(path, "expected a list of strings or a string", v);
  std::vector<std::string> argv;
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto s = read_string(v[i], spec_path_index(path, i), "a string");
    if (!s) return s.error();
    argv.push_back(std::move(*s));
  }
  return Command(std::move(argv));
}

Result<RunStep> read_run(const Json& v, std::string_view path) {
  if (auto s = check_keys(
          v, path, {"image", "cmd", "env", "mounts", "workdir", "keep", "retry_on_exit", "timeout"},
          {"network", "resources", "user", "artifacts", "secrets", "env_secrets"});
      !s.ok())
    return s;
  RunStep out;
  auto image = required_string(v, path, "image", "an image reference");
  if (!image) return image.error();
  out.image = std::move(*image);
  if (const Json* cmd = member(v, "cmd")) {
    auto c = read_command(*cmd, spec_path_key(path, "cmd"));
    if (!c) return c.error();
    out.cmd = std::move(*c);
  }
  if (auto s = optional_env(v, path, "env", out.env); !s.ok()) return s;
  if (const Json* mounts = member(v, "mounts")) {
    const std::string at = spec_path_key(path, "mounts");
    if (!mounts->is_array()) {
      return expected(at, "expected a list of \"src:dst[:ro]\" or \"cache:NAME:dst[:ro]\"",
                      *mounts);
    }
    for (std::size_t i = 0; i < mounts->size(); ++i) {
      const std::string item = spec_path_index(at, i);
      auto s = read_string((*mounts)[i], item, "a mount \"src:dst[:ro]\" or \"cache:NAME:dst\"");
      if (!s) return s.error();
      if (!has_template(*s)) {
        auto mount = parse_mount(*s);
        if (!mount) return fail(item, mount.error().message());
      }
      out.mounts.push_back(std::move(*s));
    }
  }
  if (auto s = optional_text(v, path, "workdir", "an absolute path in the container", out.workdir);
      !s.ok())
    return s;
  if (!out.workdir.empty() && !has_template(out.workdir) && out.workdir[0] != '/') {
    return fail(spec_path_key(path, "workdir"),
                "expected an absolute path in the container, got " + quote(out.workdir));
  }
  if (auto s = optional_bool(v, path, "keep", out.keep); !s.ok()) return s;
  if (auto s = optional_bool(v, path, "retry_on_exit", out.retry_on_exit); !s.ok()) return s;
  return out;
}

Result<ExecStep> read_exec(const Json& v, std::string_view path) {
  if (auto s = check_keys(v, path, {"cmd", "env", "timeout"}); !s.ok()) return s;
  ExecStep out;
  auto cmd = required_string(v, path, "cmd", "a shell command line as a string");
  if (!cmd) return cmd.error();
  out.cmd = std::move(*cmd);
  if (auto s = optional_env(v, path, "env", out.env); !s.ok()) return s;
  return out;
}

Result<UploadStep> read_upload(const Json& v, std::string_view path) {
  if (auto s = check_keys(v, path, {"src", "content", "dest", "mode", "timeout"}); !s.ok())
    return s;
  UploadStep out;
  auto src = optional_string(v, path, "src", "a local file or directory");
  if (!src) return src.error();
  out.src = std::move(*src);
  auto content = optional_string(v, path, "content", "the file's content as a string");
  if (!content) return content.error();
  out.content = std::move(*content);
  if (out.src && out.content) {
    return fail(spec_path_key(path, "content"), "expected either src or content, got both");
  }
  if (!out.src && !out.content) {
    return fail(path, "expected src (a local file or directory) or content, got neither");
  }
  if (out.src && out.src->empty()) {
    return fail(spec_path_key(path, "src"), "expected a local file or directory, got \"\"");
  }
  auto dest = required_string(v, path, "dest", "a path on the host");
  if (!dest) return dest.error();
  out.dest = std::move(*dest);
  if (const Json* mode = member(v, "mode")) {
    const std::string at = spec_path_key(path, "mode");
    constexpr std::string_view kMode = "expected a file mode as an octal string such as \"0600\"";
    if (!mode->is_string()) return expected(at, kMode, *mode);
    const auto& text = mode->get_ref<const std::string&>();
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
    if (text.size() < 3 || text.size() > 4 || ec != std::errc() ||
        end != text.data() + text.size() || value > 07777) {
      return expected(at, kMode, *mode);
    }
    out.mode = value;
  }
  return out;
}

Result<DownloadStep> read_download(const Json& v, std::string_view path) {
  if (auto s = check_keys(v, path, {"src", "dest", "timeout"}); !s.ok()) return s;
  DownloadStep out;
  auto src = required_string(v, path, "src", "a path on the host");
  if (!src) return src.error();
  out.src = std::move(*src);
  auto dest = required_string(v, path, "dest", "a path in the run's artifacts");
  if (!dest) return dest.error();
  out.dest = std::move(*dest);
  if (!has_template(out.dest) &&
      (out.dest[0] == '/' || out.dest == ".." || out.dest.starts_with("../") ||
       out.dest.find("/../") != std::string::npos || out.dest.ends_with("/.."))) {
    return fail(spec_path_key(path, "dest"),
                "expected a relative path inside the run's artifacts, got " + quote(out.dest));
  }
  return out;
}

Result<HttpStep> read_http(const Json& v, std::string_view path) {
  if (auto s = check_keys(v, path, {"method", "url", "json_file", "body", "expect", "timeout"});
      !s.ok())
    return s;
  HttpStep out;
  if (const Json* method = member(v, "method")) {
    const std::string at = spec_path_key(path, "method");
    constexpr std::string_view kMethods = "expected GET, HEAD, POST, PUT, PATCH or DELETE";
    if (!method->is_string()) return expected(at, kMethods, *method);
    const auto& m = method->get_ref<const std::string&>();
    const Keys methods{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
    if (std::find(methods.begin(), methods.end(), std::string_view(m)) == methods.end()) {
      return expected(at, kMethods, *method);
    }
    out.method = m;
  }
  auto url = required_string(v, path, "url", "an http:// or https:// URL");
  if (!url) return url.error();
  out.url = std::move(*url);
  if (!has_template(out.url) && !out.url.starts_with("http://") &&
      !out.url.starts_with("https://")) {
    return fail(spec_path_key(path, "url"),
                "expected an http:// or https:// URL, got " + quote(out.url));
  }
  auto json_file = optional_string(v, path, "json_file", "a file in the run's artifacts");
  if (!json_file) return json_file.error();
  out.json_file = std::move(*json_file);
  auto body = optional_string(v, path, "body", "the request body as a string");
  if (!body) return body.error();
  out.body = std::move(*body);
  if (out.json_file && out.body) {
    return fail(spec_path_key(path, "body"), "expected either json_file or body, got both");
  }
  if (const Json* expect = member(v, "expect")) {
    const std::string at = spec_path_key(path, "expect");
    if (!expect->is_object())
      return expected(at, "expected a mapping such as {status: 200}", *expect);
    if (auto s = check_keys(*expect, at, {"status"}); !s.ok()) return s;
    if (const Json* status = member(*expect, "status")) {
      auto n = read_int(*status, spec_path_key(at, "status"), 100, 599, "an HTTP status");
      if (!n) return n.error();
      out.expect_status = static_cast<int>(*n);
    }
  }
  return out;
}

Result<StepSpec> read_step(const Json& v, std::string_view path) {
  if (!v.is_object()) {
    return expected(path, "expected a mapping with one of build, run, exec, upload, download, http",
                    v);
  }
  for (const auto& [key, value] : v.items()) {
    if (key == "timeout") {
      return fail(spec_path_key(path, key),
                  "unknown key (a step's timeout goes inside its kind, e.g. run: {timeout: 10m})");
    }
  }
  if (auto s = check_keys(v, path, {"id", "build", "run", "exec", "upload", "download", "http"},
                          {"if", "always", "uses", "with"});
      !s.ok())
    return s;
  std::vector<std::string> kinds;
  for (const auto& [key, value] : v.items()) {
    if (key != "id") kinds.push_back(key);
  }
  constexpr std::string_view kOne =
      "expected exactly one of build, run, exec, upload, download, http";
  if (kinds.empty()) return fail(path, std::string(kOne) + ", got none");
  if (kinds.size() > 1) {
    return fail(path,
                std::string(kOne) + ", got both \"" + kinds[0] + "\" and \"" + kinds[1] + "\"");
  }
  StepSpec out;
  if (const Json* id = member(v, "id")) {
    const std::string at = spec_path_key(path, "id");
    if (!id->is_string() || !identifier_ok(id->get_ref<const std::string&>(), true)) {
      return expected(at, "expected an id matching [A-Za-z_][A-Za-z0-9_-]*", *id);
    }
    out.id = id->get<std::string>();
  }
  const std::string& kind = kinds[0];
  const Json& body = v[kind];
  const std::string at = spec_path_key(path, kind);
  if (!body.is_object()) return expected(at, "expected a mapping", body);
  if (const Json* timeout = member(body, "timeout")) {
    auto d = read_duration(*timeout, spec_path_key(at, "timeout"));
    if (!d) return d.error();
    out.timeout = std::move(*d);
  }
  auto assign = [&](auto result) -> Status {
    if (!result) return result.error();
    out.body = std::move(*result);
    return {};
  };
  Status s;
  if (kind == "build") s = assign(read_build(body, at));
  if (kind == "run") s = assign(read_run(body, at));
  if (kind == "exec") s = assign(read_exec(body, at));
  if (kind == "upload") s = assign(read_upload(body, at));
  if (kind == "download") s = assign(read_download(body, at));
  if (kind == "http") s = assign(read_http(body, at));
  if (!s.ok()) return s;
  return out;
}

Result<std::vector<MatrixAxis>> read_matrix(const Json& v, std::string_view path) {
  constexpr std::string_view kWhat = "expected a mapping of matrix keys to lists of values";
  if (!v.is_object()) return expected(path, kWhat, v);
  if (v.empty()) return expected(path, kWhat, v);
  std::vector<MatrixAxis> out;
  std::size_t product = 1;
  for (const auto& [key, values] : v.items()) {
    const std::string at = spec_path_key(path, key);
    if (key == "include" || key == "exclude") return fail(at, "not supported yet");
    if (!identifier_ok(key, true)) {
      return fail(at, "expected a matrix key matching [A-Za-z_][A-Za-z0-9_-]*, got " + quote(key));
    }
    if (!values.is_array()) return expected(at, "expected a list of values", values);
    if (values.empty()) return fail(at, "expected a list of at least one value, got []");
    MatrixAxis axis{key, {}};
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::string item = spec_path_index(at, i);
      const Json& value = values[i];
      if (!value.is_string() && !value.is_number() && !value.is_boolean()) {
        return expected(item, "expected a string, number or boolean", value);
      }
      auto s = read_scalar(value, item);
      if (!s) return s.error();
      if (s->empty()) return fail(item, "expected a non-empty value, got \"\"");
      axis.values.push_back(std::move(*s));
    }
    product *= axis.values.size();
    if (product > kMaxMatrixProduct) {
      return fail(path, "expected at most " + std::to_string(kMaxMatrixProduct) +
                            " combinations per job, got " + std::to_string(product) + " or more");
    }
    out.push_back(std::move(axis));
  }
  return out;
}

Result<JobSpec> read_job(const std::string& name, const Json& v, std::string_view path) {
  if (!v.is_object()) return expected(path, "expected a mapping with steps", v);
  if (auto s =
          check_keys(v, path, {"matrix", "host", "needs", "steps", "timeout", "retries", "backoff"},
                     {"labels", "uses", "with", "secrets"});
      !s.ok())
    return s;
  JobSpec out;
  out.name = name;
  if (const Json* matrix = member(v, "matrix")) {
    auto m = read_matrix(*matrix, spec_path_key(path, "matrix"));
    if (!m) return m.error();
    out.matrix = std::move(*m);
  }
  if (const Json* host = member(v, "host")) {
    auto h = read_nonempty(*host, spec_path_key(path, "host"),
                           "\"local\" or a host named in the daemon's config");
    if (!h) return h.error();
    out.host = std::move(*h);
  }
  if (const Json* needs = member(v, "needs")) {
    const std::string at = spec_path_key(path, "needs");
    if (needs->is_string()) {
      out.needs.push_back(needs->get<std::string>());
    } else if (needs->is_array()) {
      for (std::size_t i = 0; i < needs->size(); ++i) {
        auto s = read_string((*needs)[i], spec_path_index(at, i), "a job name");
        if (!s) return s.error();
        if (std::find(out.needs.begin(), out.needs.end(), *s) != out.needs.end()) {
          return fail(spec_path_index(at, i), "duplicate job " + quote(*s));
        }
        out.needs.push_back(std::move(*s));
      }
    } else {
      return expected(at, "expected a list of job names", *needs);
    }
  }
  const Json* steps = member(v, "steps");
  if (steps == nullptr) return missing(path, "steps", "a list of steps");
  const std::string steps_path = spec_path_key(path, "steps");
  if (!steps->is_array() || steps->empty()) {
    return expected(steps_path, "expected a list of at least one step", *steps);
  }
  std::map<std::string, std::size_t> ids;
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const std::string at = spec_path_index(steps_path, i);
    auto step = read_step((*steps)[i], at);
    if (!step) return step.error();
    if (step->id) {
      auto [it, inserted] = ids.emplace(*step->id, i);
      if (!inserted) {
        return fail(spec_path_key(at, "id"), "duplicate step id " + quote(*step->id) +
                                                 " (also steps[" + std::to_string(it->second) +
                                                 "])");
      }
    }
    out.steps.push_back(std::move(*step));
  }
  if (const Json* timeout = member(v, "timeout")) {
    auto d = read_duration(*timeout, spec_path_key(path, "timeout"));
    if (!d) return d.error();
    out.timeout = std::move(*d);
  }
  if (const Json* retries = member(v, "retries")) {
    auto n = read_int(*retries, spec_path_key(path, "retries"), 0, kMaxRetries, "retries");
    if (!n) return n.error();
    out.retries = static_cast<int>(*n);
  }
  if (const Json* backoff = member(v, "backoff")) {
    auto d = read_duration(*backoff, spec_path_key(path, "backoff"));
    if (!d) return d.error();
    out.backoff = std::move(*d);
  }
  return out;
}

Status read_defaults(const Json& v, std::string_view path, Defaults& out) {
  if (!v.is_object()) return expected(path, "expected a mapping of timeout, retries, backoff", v);
  if (auto s = check_keys(v, path, {"timeout", "retries", "backoff"}); !s.ok()) return s;
  if (const Json* timeout = member(v, "timeout")) {
    auto d = read_duration(*timeout, spec_path_key(path, "timeout"));
    if (!d) return d.error();
    out.timeout = std::move(*d);
  }
  if (const Json* retries = member(v, "retries")) {
    auto n = read_int(*retries, spec_path_key(path, "retries"), 0, kMaxRetries, "retries");
    if (!n) return n.error();
    out.retries = static_cast<int>(*n);
  }
  if (const Json* backoff = member(v, "backoff")) {
    auto d = read_duration(*backoff, spec_path_key(path, "backoff"));
    if (!d) return d.error();
    out.backoff = std::move(*d);
  }
  return {};
}

// needs: every name is a job, and the graph has no cycle (reported as the first one found,
// starting from jobs in file order).
Status check_needs(const RunSpec& spec) {
  std::map<std::string, std::size_t, std::less<>> index;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < spec.jobs.size(); ++i) {
    index.emplace(spec.jobs[i].name, i);
    names.push_back(spec.jobs[i].name);
  }
  for (const auto& job : spec.jobs) {
    const std::string at = spec_path_key(spec_path_key("jobs", job.name), "needs");
    for (std::size_t i = 0; i < job.needs.size(); ++i) {
      if (index.contains(job.needs[i])) continue;
      std::string message = "unknown job " + quote(job.needs[i]);
      const std::string near = closest(job.needs[i], names);
      if (!near.empty()) message += " (did you mean \"" + near + "\"?)";
      return fail(spec_path_index(at, i), message);
    }
  }
  enum class Mark { kNew, kActive, kDone };
  std::vector<Mark> marks(spec.jobs.size(), Mark::kNew);
  for (std::size_t root = 0; root < spec.jobs.size(); ++root) {
    if (marks[root] != Mark::kNew) continue;
    // An explicit stack: job and the next of its needs to visit.
    std::vector<std::pair<std::size_t, std::size_t>> stack{{root, 0}};
    marks[root] = Mark::kActive;
    while (!stack.empty()) {
      auto& [job, next] = stack.back();
      const auto& needs = spec.jobs[job].needs;
      if (next == needs.size()) {
        marks[job] = Mark::kDone;
        stack.pop_back();
        continue;
      }
      const std::size_t target = index.find(needs[next++])->second;
      if (marks[target] == Mark::kDone) continue;
      if (marks[target] == Mark::kActive) {
        auto from = std::find_if(stack.begin(), stack.end(),
                                 [&](const auto& frame) { return frame.first == target; });
        std::string cycle;
        for (auto it = from; it != stack.end(); ++it) cycle += spec.jobs[it->first].name + " -> ";
        cycle += spec.jobs[target].name;
        return fail(spec_path_key(spec_path_key("jobs", spec.jobs[target].name), "needs"),
                    "cycle " + cycle);
      }
      marks[target] = Mark::kActive;
      stack.emplace_back(target, 0);
    }
  }
  return {};
}

Result<RunSpec> validate(const Json& root) {
  if (!root.is_object()) {
    return expected("", "expected a mapping with version, name and jobs at the top", root);
  }
  if (auto s = check_keys(
          root, "", {"version", "name", "vars", "defaults", "concurrency", "fail_fast", "jobs"},
          {"timeout"});
      !s.ok())
    return s;
  RunSpec out;
  const Json* version = member(root, "version");
  if (version == nullptr) return missing("", "version", "1");
  if (!version->is_number_integer() || *version != 1) {
    return expected("version", "expected 1 (the only spec version)", *version);
  }
  const Json* name = member(root, "name");
  if (name == nullptr)
    return missing("", "name", std::string("a name matching ") + std::string(kNameRule));
  if (!name->is_string() || !name_ok(name->get_ref<const std::string&>())) {
    return expected("name",
                    "expected a name of at most 63 characters matching " + std::string(kNameRule),
                    *name);
  }
  out.name = name->get<std::string>();
  if (const Json* vars = member(root, "vars")) {
    auto map = read_string_map(*vars, "vars", "[A-Za-z_][A-Za-z0-9_-]*", false);
    if (!map) return map.error();
    for (const auto& [key, value] : *map) {
      if (!identifier_ok(key, true)) {
        return fail(spec_path_key("vars", key),
                    "expected a name matching [A-Za-z_][A-Za-z0-9_-]*, got " + quote(key));
      }
    }
    out.vars = std::move(*map);
  }
  if (const Json* defaults = member(root, "defaults")) {
    if (auto s = read_defaults(*defaults, "defaults", out.defaults); !s.ok()) return s;
  }
  if (const Json* concurrency = member(root, "concurrency")) {
    auto n = read_int(*concurrency, "concurrency", 1, static_cast<std::int64_t>(kMaxJobInstances),
                      "a number of jobs");
    if (!n) return n.error();
    out.concurrency = static_cast<int>(*n);
  }
  if (auto s = optional_bool(root, "", "fail_fast", out.fail_fast); !s.ok()) return s;
  const Json* jobs = member(root, "jobs");
  if (jobs == nullptr) return missing("", "jobs", "a mapping of job names to jobs");
  if (!jobs->is_object() || jobs->empty()) {
    return expected("jobs", "expected a mapping of at least one job name to a job", *jobs);
  }
  if (jobs->size() > kMaxJobInstances) {
    return fail("jobs", "expected at most " + std::to_string(kMaxJobInstances) + " jobs, got " +
                            std::to_string(jobs->size()));
  }
  for (const auto& [job_name, job] : jobs->items()) {
    const std::string at = spec_path_key("jobs", job_name);
    if (!name_ok(job_name)) {
      return fail(at, "a job name must have at most 63 characters and match " +
                          std::string(kNameRule) + ", got " + quote(job_name));
    }
    auto parsed = read_job(job_name, job, at);
    if (!parsed) return parsed.error();
    out.jobs.push_back(std::move(*parsed));
  }
  if (auto s = check_needs(out); !s.ok()) return s;
  auto instances = expand_jobs(out);
  if (!instances) return instances.error();
  return out;
}

// --- text to the JSON model -------------------------------------------------------------------

std::string line_column(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1;
  std::size_t start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(offset - start + 1);
}

// The offset of the first byte that is not well-formed UTF-8, or npos.
std::size_t bad_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t min = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      min = 0x80;
      cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      min = 0x800;
      cp = c & 0x0fu;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      min = 0x10000;
      cp = c & 0x07u;
    } else {
      return i;
    }
    if (i + extra >= text.size()) return i;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += extra + 1;
  }
  return std::string_view::npos;
}

// Nesting of flow collections, counted on the raw text outside quotes. A bound before the
// parsers run, since yaml-cpp recurses once per level.
std::size_t flow_depth(std::string_view text) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  char quote_char = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote_char != 0) {
      if (c == '\\' && quote_char == '"') {
        ++i;
      } else if (c == quote_char) {
        quote_char = 0;
      }
      continue;
    }
    if (c == '"' || c == '\'') {
      quote_char = c;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

// Block nesting: compact forms ("- - - x", "? ? x") nest on one line, indentation across lines.
std::size_t block_depth(std::string_view text) {
  std::size_t deepest = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    std::size_t depth = 0;
    std::size_t i = 0;
    while (i < line.size()) {
      if (line[i] == ' ') {
        ++depth;
        ++i;
      } else if ((line[i] == '-' || line[i] == '?' || line[i] == ':') && i + 1 < line.size() &&
                 line[i + 1] == ' ') {
        depth += 2;
        i += 2;
      } else {
        break;
      }
    }
    deepest = std::max(deepest, depth / 2);
    pos = end + 1;
  }
  return deepest;
}

// ordered_json finds a key by a linear scan, so a mapping's size is bounded before it is built.
Status too_many_keys(std::string_view path) {
  return fail(path, "expected at most " + std::to_string(kMaxKeys) + " keys in one mapping");
}

class YamlConverter {
 public:
  Result<Json> convert(const YAML::Node& node, const std::string& path, std::size_t depth) {
    if (depth > kMaxNesting) {
      return fail(path, "nested deeper than " + std::to_string(kMaxNesting) + " levels");
    }
    if (++nodes_ > kMaxNodes) {
      return fail("", "the spec expands to more than " + std::to_string(kMaxNodes) +
                          " values (YAML aliases?)");
    }
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return Json();
      case YAML::NodeType::Scalar:
        return scalar(node, path);
      case YAML::NodeType::Sequence: {
        Json out = Json::array();
        std::size_t i = 0;
        for (const auto& item : node) {
          auto value = convert(item, spec_path_index(path, i++), depth + 1);
          if (!value) return value.error();
          out.push_back(std::move(*value));
        }
        return out;
      }
      case YAML::NodeType::Map: {
        Json out = Json::object();
        std::set<std::string, std::less<>> seen;
        for (const auto& entry : node) {
          if (!entry.first.IsScalar()) {
            return fail(path, "expected string keys, got a " +
                                  std::string(entry.first.IsNull() ? "null" : "collection") +
                                  " key");
          }
          const std::string& key = entry.first.Scalar();
          bytes_ += key.size();
          const std::string at = spec_path_key(path, key);
          if (!seen.insert(key).second) return fail(at, "duplicate key");
          if (seen.size() > kMaxKeys) return too_many_keys(path);
          auto value = convert(entry.second, at, depth + 1);
          if (!value) return value.error();
          out[key] = std::move(*value);
        }
        return out;
      }
    }
    return Json();
  }

 private:
  // YAML 1.2 core schema for null, booleans and integers; everything else stays a string. No
  // spec field is a float, and a matrix value "3.10" must stay "3.10"; a leading zero ("0600")
  // keeps a file mode as written.
  Result<Json> scalar(const YAML::Node& node, const std::string& path) {
    const std::string& text = node.Scalar();
    bytes_ += text.size();
    if (bytes_ > kMaxScalarBytes) {
      return fail("", "the spec expands to more than " + std::to_string(kMaxScalarBytes) +
                          " bytes of text (YAML aliases?)");
    }
    const std::string& tag = node.Tag();
    if (tag == "!" || tag == "tag:yaml.org,2002:str") return Json(text);
    if (tag != "?" && !tag.empty()) return fail(path, "unsupported YAML tag " + quote(tag));
    if (text == "~" || text == "null" || text == "Null" || text == "NULL") return Json();
    if (text == "true" || text == "True" || text == "TRUE") return Json(true);
    if (text == "false" || text == "False" || text == "FALSE") return Json(false);
    const std::string_view digits =
        text.starts_with('-') ? std::string_view(text).substr(1) : std::string_view(text);
    const bool integer =
        !digits.empty() && (digits == "0" || digits[0] != '0') &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (integer) {
      std::int64_t value = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size()) return Json(value);
    }
    return Json(text);
  }

  std::size_t nodes_ = 0;
  std::size_t bytes_ = 0;
};

// Raised from the JSON parser's callback, which cannot return an error.
struct JsonShapeError {
  Status status;
};

// Tracks where the JSON parser is, to refuse duplicate keys (which nlohmann would silently
// overwrite) and oversized mappings with the path of the offending key.
class JsonShapeCheck {
 public:
  bool operator()(int, nlohmann::detail::parse_event_t event, Json& parsed) {
    using Event = nlohmann::detail::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start: {
        std::string path = stack_.empty() ? std::string() : child_path();
        stack_.push_back(Frame{event == Event::object_start, std::move(path), {}, 0, {}});
        break;
      }
      case Event::key: {
        Frame& top = stack_.back();
        const auto& key = parsed.get_ref<const std::string&>();
        if (!top.keys.insert(key).second) {
          throw JsonShapeError{fail(spec_path_key(top.path, key), "duplicate key")};
        }
        if (top.keys.size() > kMaxKeys) throw JsonShapeError{too_many_keys(top.path)};
        top.key = key;
        break;
      }
      case Event::object_end:
      case Event::array_end:
        stack_.pop_back();
        break;
      case Event::value:
        if (!stack_.empty() && !stack_.back().object) ++stack_.back().index;
        break;
    }
    return true;
  }

 private:
  struct Frame {
    bool object = false;
    std::string path;
    std::string key;
    std::size_t index = 0;
    std::set<std::string, std::less<>> keys;
  };

  std::string child_path() {
    Frame& top = stack_.back();
    return top.object ? spec_path_key(top.path, top.key) : spec_path_index(top.path, top.index++);
  }

  std::vector<Frame> stack_;
};

Result<Json> parse_json_text(std::string_view text) {
  try {
    JsonShapeCheck check;
    return Json::parse(text, std::ref(check));
  } catch (const JsonShapeError& e) {
    return e.status;
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    const std::size_t column = what.find("column ");
    const std::size_t colon = what.find(": ", column == std::string::npos ? 0 : column);
    if (colon != std::string::npos) what.erase(0, colon + 2);
    return fail("",
                "invalid JSON at " + line_column(text, e.byte == 0 ? 0 : e.byte - 1) + ": " + what);
  } catch (const Json::exception& e) {
    // A number out of range ("1e999") is an out_of_range, not a parse_error.
    std::string what = e.what();
    if (const std::size_t end = what.find("] "); end != std::string::npos) what.erase(0, end + 2);
    return fail("", "invalid JSON: " + what);
  }
}

Result<Json> parse_yaml_text(std::string_view text) {
  auto document = load_yaml_document(text);
  if (!document) return document.error();
  if (!document->IsDefined() || document->IsNull()) return Json();
  try {
    YamlConverter converter;
    return converter.convert(*document, "", 0);
  } catch (const YAML::Exception& e) {
    return fail("", describe_yaml_error(e));
  }
}

// The bounds text gets before parsing, for a JSON value built elsewhere: converting a large
// object to ordered_json is quadratic.
template <class AnyJson>
Status check_shape(const AnyJson& v, const std::string& path, std::size_t depth) {
  if (!v.is_structured()) return {};
  if (depth >= kMaxNesting) {
    return fail(path, "nested deeper than " + std::to_string(kMaxNesting) + " levels");
  }
  if (v.is_object()) {
    if (v.size() > kMaxKeys) return too_many_keys(path);
    for (const auto& [key, value] : v.items()) {
      if (auto s = check_shape(value, spec_path_key(path, key), depth + 1); !s.ok()) return s;
    }
    return {};
  }
  std::size_t i = 0;
  for (const auto& value : v) {
    if (auto s = check_shape(value, spec_path_index(path, i++), depth + 1); !s.ok()) return s;
  }
  return {};
}

}  // namespace

std::string_view step_kind_name(StepKind kind) {
  switch (kind) {
    case StepKind::kBuild:
      return "build";
    case StepKind::kRun:
      return "run";
    case StepKind::kExec:
      return "exec";
    case StepKind::kUpload:
      return "upload";
    case StepKind::kDownload:
      return "download";
    case StepKind::kHttp:
      return "http";
  }
  return "run";
}

std::string spec_path_key(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (plain_segment(key)) {
    if (!out.empty()) out += '.';
    out += key;
  } else {
    out += '[';
    out += Json(std::string(key)).dump(-1, ' ', false, Json::error_handler_t::replace);
    out += ']';
  }
  return out;
}

std::string spec_path_index(std::string_view parent, std::size_t index) {
  std::string out(parent);
  out += '[';
  out += std::to_string(index);
  out += ']';
  return out;
}

std::string spec_error_path(const Status& status) {
  const std::string& m = status.message();
  std::size_t i = 0;
  auto plain = [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  };
  bool any = false;
  while (i < m.size()) {
    if (plain(m[i]) || (m[i] == '.' && any)) {
      ++i;
    } else if (m[i] == '[' && i + 1 < m.size() && m[i + 1] == '"') {
      i += 2;
      while (i < m.size() && m[i] != '"') i += m[i] == '\\' ? std::size_t{2} : std::size_t{1};
      if (i + 1 >= m.size() || m[i + 1] != ']') return "";
      i += 2;
    } else if (m[i] == '[') {
      const std::size_t close = m.find(']', i);
      if (close == std::string::npos || close == i + 1) return "";
      for (std::size_t k = i + 1; k < close; ++k) {
        if (m[k] < '0' || m[k] > '9') return "";
      }
      i = close + 1;
    } else {
      break;
    }
    any = true;
  }
  if (!any || m.compare(i, 2, ": ") != 0) return "";
  return m.substr(0, i);
}

Result<Mount> parse_mount(std::string_view text) {
  const auto bad = [&] {
    return invalid_argument(
        "expected a mount \"src:dst[:ro]\" or \"cache:NAME:dst[:ro]\" with an absolute dst, got " +
        quote(text));
  };
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  Mount out;
  if (parts.size() >= 2 && parts.back() == "ro") {
    out.read_only = true;
    parts.pop_back();
  }
  if (parts.size() == 3 && parts[0] == "cache") {
    out.type = Mount::Type::kCache;
    if (!identifier_ok(parts[1], true) && !name_ok(parts[1])) return bad();
    parts.erase(parts.begin());
  }
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty() || parts[1][0] != '/') {
    return bad();
  }
  out.source = std::string(parts[0]);
  out.target = std::string(parts[1]);
  return out;
}

namespace {

// The bounds and the parser shared by specs and other documents; `noun` names the text in
// messages ("the spec"). An empty YAML document is null.
Result<Json> read_document(std::string_view text, std::string_view noun) {
  const std::string what(noun);
  if (text.size() > kMaxSpecBytes) {
    return fail("", what + " is " + std::to_string(text.size()) +
                        " bytes, more than the limit of " + std::to_string(kMaxSpecBytes) +
                        " (1 MiB)");
  }
  if (const std::size_t bad = bad_utf8(text); bad != std::string_view::npos) {
    return fail("", what + " is not valid UTF-8 at " + line_column(text, bad));
  }
  if (flow_depth(text) > kMaxNesting || block_depth(text) > 4 * kMaxNesting) {
    return fail("", what + " is nested deeper than " + std::to_string(kMaxNesting) + " levels");
  }
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '{' ? parse_json_text(text)
                                                               : parse_yaml_text(text);
}

}  // namespace

Result<nlohmann::ordered_json> parse_document(std::string_view text) {
  return read_document(text, "the document");
}

Result<RunSpec> parse_spec(std::string_view text) {
  Result<Json> root = read_document(text, "the spec");
  if (!root) return root.error();
  if (root->is_null()) return fail("", "the spec is empty");
  try {
    return validate(*root);
  } catch (const nlohmann::json::exception& e) {
    return internal_error(std::string("validating the spec: ") + e.what());
  }
}

Result<RunSpec> parse_spec_json(const nlohmann::ordered_json& spec) {
  try {
    if (auto s = check_shape(spec, "", 0); !s.ok()) return s;
    return validate(spec);
  } catch (const nlohmann::json::exception& e) {
    return internal_error(std::string("validating the spec: ") + e.what());
  }
}

Result<RunSpec> parse_spec_json(const nlohmann::json& spec) {
  try {
    if (auto s = check_shape(spec, "", 0); !s.ok()) return s;
    return parse_spec_json(Json(spec));
  } catch (const nlohmann::json::exception& e) {
    return internal_error(std::string("validating the spec: ") + e.what());
  }
}

Status check_spec_references(const RunSpec& spec, const std::set<std::string, std::less<>>& vars,
                             const std::set<std::string, std::less<>>& secrets) {
  for (const JobSpec& job : spec.jobs) {
    const std::string job_path = spec_path_key("jobs", job.name);
    ReferenceScope scope;
    scope.vars = vars;
    scope.secrets = secrets;
    for (const MatrixAxis& axis : job.matrix) scope.matrix.insert(axis.key);
    scope.needs.insert(job.needs.begin(), job.needs.end());
    auto check = [&scope](std::string_view text, const std::string& path) {
      Status status = check_references(text, scope);
      return status.ok() ? status : std::move(status).with_context(path);
    };
    const std::pair<const std::optional<DurationSpec>*, std::string_view> durations[] = {
        {&job.timeout, "timeout"}, {&job.backoff, "backoff"}};
    for (const auto& [duration, key] : durations) {
      if (*duration) {
        if (Status s = check((*duration)->text, spec_path_key(job_path, key)); !s.ok()) return s;
      }
    }
    const std::string steps_path = spec_path_key(job_path, "steps");
    for (std::size_t i = 0; i < job.steps.size(); ++i) {
      const StepSpec& step = job.steps[i];
      const std::string path =
          spec_path_key(spec_path_index(steps_path, i), step_kind_name(step.kind()));
      std::vector<std::pair<std::string_view, std::string>> fields;
      if (step.timeout) fields.emplace_back(step.timeout->text, spec_path_key(path, "timeout"));
      if (const auto* build = std::get_if<BuildStep>(&step.body)) {
        fields.emplace_back(build->context, spec_path_key(path, "context"));
        fields.emplace_back(build->dockerfile, spec_path_key(path, "dockerfile"));
        fields.emplace_back(build->repository, spec_path_key(path, "repository"));
        for (const auto& [key, value] : build->args) {
          fields.emplace_back(value, spec_path_key(spec_path_key(path, "args"), key));
        }
      } else if (const auto* run = std::get_if<RunStep>(&step.body)) {
        fields.emplace_back(run->image, spec_path_key(path, "image"));
        fields.emplace_back(run->workdir, spec_path_key(path, "workdir"));
        if (const auto* argv = std::get_if<std::vector<std::string>>(&run->cmd)) {
          for (std::size_t a = 0; a < argv->size(); ++a) {
            fields.emplace_back((*argv)[a], spec_path_index(spec_path_key(path, "cmd"), a));
          }
        } else {
          fields.emplace_back(std::get<std::string>(run->cmd), spec_path_key(path, "cmd"));
        }
        for (const auto& [key, value] : run->env) {
          fields.emplace_back(value, spec_path_key(spec_path_key(path, "env"), key));
        }
        for (std::size_t m = 0; m < run->mounts.size(); ++m) {
          fields.emplace_back(run->mounts[m], spec_path_index(spec_path_key(path, "mounts"), m));
        }
      } else if (const auto* exec = std::get_if<ExecStep>(&step.body)) {
        fields.emplace_back(exec->cmd, spec_path_key(path, "cmd"));
        for (const auto& [key, value] : exec->env) {
          fields.emplace_back(value, spec_path_key(spec_path_key(path, "env"), key));
        }
      } else if (const auto* upload = std::get_if<UploadStep>(&step.body)) {
        if (upload->src) fields.emplace_back(*upload->src, spec_path_key(path, "src"));
        if (upload->content) fields.emplace_back(*upload->content, spec_path_key(path, "content"));
        fields.emplace_back(upload->dest, spec_path_key(path, "dest"));
      } else if (const auto* download = std::get_if<DownloadStep>(&step.body)) {
        fields.emplace_back(download->src, spec_path_key(path, "src"));
        fields.emplace_back(download->dest, spec_path_key(path, "dest"));
      } else if (const auto* http = std::get_if<HttpStep>(&step.body)) {
        fields.emplace_back(http->url, spec_path_key(path, "url"));
        if (http->json_file)
          fields.emplace_back(*http->json_file, spec_path_key(path, "json_file"));
        if (http->body) fields.emplace_back(*http->body, spec_path_key(path, "body"));
      }
      for (const auto& [text, field_path] : fields) {
        if (Status s = check(text, field_path); !s.ok()) return s;
      }
      if (step.id) scope.steps.insert(*step.id);
    }
  }
  return ok_status();
}

}  // namespace odd::proto
