#include "oddc/run_input.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <istream>

#include "proto/spec.hpp"

namespace odd::oddc {

namespace {

std::string resolve(const std::string& path, const std::string& cwd) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || cwd.empty()) return path;
  return (std::filesystem::path(cwd) / p).string();
}

std::string too_large(const std::string& shown) {
  return shown + " is larger than " + std::to_string(proto::kMaxSpecBytes) + " bytes (1 MiB)";
}

// At most `limit` + 1 bytes, so that "too large" can be told apart from "exactly the limit".
Result<std::string> read_file(const std::string& shown, const std::string& path,
                              std::size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return invalid_argument("cannot read " + shown + ": " + std::strerror(errno));
  std::string data;
  char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return invalid_argument("cannot read " + shown + ": " + std::strerror(err));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<std::size_t>(n));
    if (data.size() > limit) {
      ::close(fd);
      return invalid_argument(too_large(shown));
    }
  }
  ::close(fd);
  return data;
}

bool name_ok(std::string_view name) {
  if (name.empty()) return false;
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (const char c : name.substr(1)) {
    if (!alpha(c) && !(c >= '0' && c <= '9') && c != '-') return false;
  }
  return true;
}

constexpr std::string_view kNameRule = "[A-Za-z_][A-Za-z0-9_-]*";

bool ends_with(std::string_view text, std::string_view tail) {
  return text.size() >= tail.size() && text.substr(text.size() - tail.size()) == tail;
}

std::string kind_of(const proto::Json& value) {
  if (value.is_object()) return "a mapping";
  if (value.is_array()) return "a list";
  return value.type_name();
}

Status load_vars_file(const std::string& name, const std::string& cwd, proto::OutputMap& vars) {
  if (!ends_with(name, ".json") && !ends_with(name, ".yaml") && !ends_with(name, ".yml")) {
    return invalid_argument("-e @" + name + ": expected a .json, .yaml or .yml file");
  }
  auto text = read_file(name, resolve(name, cwd), proto::kMaxSpecBytes);
  if (!text) return text.error();
  // JSON text is read by the same reader (it is valid YAML, and JSON when it starts with '{').
  auto parsed = proto::parse_document(*text);
  if (!parsed) return parsed.error().with_context(name);
  const proto::Json document = std::move(*parsed);
  if (document.is_null()) return ok_status();
  if (!document.is_object()) {
    return invalid_argument(name + ": expected a mapping of names to values, got " +
                            kind_of(document));
  }
  for (const auto& [key, value] : document.items()) {
    if (!name_ok(key)) {
      return invalid_argument(name + ": key \"" + key + "\": expected a name matching " +
                              std::string(kNameRule));
    }
    if (value.is_structured()) {
      return invalid_argument(name + ": key \"" + key +
                              "\": expected a string, number or boolean, got " + kind_of(value));
    }
    if (value.is_string()) {
      vars[key] = value.get<std::string>();
    } else if (value.is_null()) {
      vars[key] = "";
    } else if (value.is_boolean()) {
      vars[key] = value.get<bool>() ? "true" : "false";
    } else {
      vars[key] = value.dump();
    }
  }
  return ok_status();
}

}  // namespace

Result<std::string> read_spec(const std::string& path, std::istream& in, const std::string& cwd) {
  if (path != "-") return read_file(path, resolve(path, cwd), proto::kMaxSpecBytes);
  std::string data;
  char buffer[16 * 1024];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    data.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (data.size() > proto::kMaxSpecBytes) return invalid_argument(too_large("the spec on stdin"));
  }
  if (in.bad()) return invalid_argument("cannot read the spec from stdin");
  return data;
}

Result<proto::OutputMap> parse_vars(const std::vector<std::string>& args, const std::string& cwd) {
  proto::OutputMap vars;
  for (const auto& arg : args) {
    if (!arg.empty() && arg[0] == '@') {
      if (auto s = load_vars_file(arg.substr(1), cwd, vars); !s.ok()) return s;
      continue;
    }
    const auto eq = arg.find('=');
    if (eq == std::string::npos) {
      return invalid_argument("-e " + arg + ": expected KEY=VALUE or @FILE.json|yaml");
    }
    const std::string key = arg.substr(0, eq);
    if (!name_ok(key)) {
      return invalid_argument("-e " + arg + ": expected a name matching " + std::string(kNameRule) +
                              " before '='");
    }
    vars[key] = arg.substr(eq + 1);
  }
  return vars;
}

Result<proto::OutputMap> collect_secrets(const std::vector<std::string>& names,
                                         const EnvLookup& env) {
  proto::OutputMap secrets;
  for (const auto& name : names) {
    auto value = env ? env(name) : std::nullopt;
    if (!value) {
      return invalid_argument("--secret " + name + ": environment variable " + name +
                              " is not set");
    }
    secrets[name] = std::move(*value);
  }
  return secrets;
}

}  // namespace odd::oddc
