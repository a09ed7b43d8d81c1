// Fuzzes IgnoreMatcher: the input is .dockerignore text and a path, split at the first NUL. Parsing
// must not crash; for a valid file, spellings of one path ("./" prefix, doubled slashes, a
// trailing slash, "x/.." detours) must get one answer, the incremental walker form must agree with
// excluded(), and a directory the matcher lets a walker skip must hold no path it would include.
// Violations trap.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/dockerignore.hpp"

namespace {

using odd::engine::clean_path;
using odd::engine::IgnoreMatcher;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string doubled_slashes(std::string_view path) {
  std::string out;
  for (const char c : path) {
    out += c;
    if (c == '/') out += '/';
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view text = input.substr(0, nul);
  const std::string_view raw_path =
      nul == std::string_view::npos ? std::string_view("a/b") : input.substr(nul + 1);

  auto parsed = IgnoreMatcher::parse(text);
  if (!parsed) {
    check(parsed.error().code() == odd::Code::kInvalidArgument);
    check(parsed.error().message().rfind(".dockerignore line ", 0) == 0);
    return 0;
  }
  const IgnoreMatcher& m = *parsed;

  const bool answer = m.excluded(raw_path);
  std::string path = clean_path(raw_path);
  if (path[0] == '/') path.erase(0, 1);
  check(m.excluded(path) == answer);
  check(m.excluded("./" + path) == answer);
  check(m.excluded(doubled_slashes(path)) == answer);
  check(m.excluded(path + "/") == answer);
  check(m.excluded("zz/../" + path) == answer);
  if (path == "." || path.empty()) {
    check(!answer);
    return 0;
  }

  // The walker's form, and the skip rule on every ancestor.
  IgnoreMatcher::Scope scope = m.root();
  std::size_t slash = 0;
  while ((slash = path.find('/', slash)) != std::string::npos) {
    const std::string dir = path.substr(0, slash);
    scope = m.enter(scope, dir);
    check(scope.excluded() == m.excluded(dir));
    if (scope.excluded() && m.can_skip(scope, dir)) check(answer);
    ++slash;
  }
  check(m.excluded(scope, path) == answer);
  return 0;
}
