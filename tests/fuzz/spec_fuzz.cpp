// Fuzzes the run-spec parser: any bytes as YAML or JSON text. Parsing must not crash or throw;
// an error is invalid_argument whose path, if any, opens its message; a parsed spec must expand
// into job instances with distinct keys and order its jobs into levels. Violations trap.

#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "proto/matrix.hpp"
#include "proto/spec.hpp"

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = odd::proto::parse_spec(text);
  if (!parsed) {
    check(parsed.error().code() == odd::Code::kInvalidArgument);
    const std::string path = odd::proto::spec_error_path(parsed.error());
    check(parsed.error().message().compare(0, path.size(), path) == 0);
    return 0;
  }
  auto instances = odd::proto::expand_jobs(*parsed);
  check(instances.has_value());
  std::set<std::string> keys;
  for (const auto& instance : *instances) check(keys.insert(instance.key).second);
  std::size_t placed = 0;
  for (const auto& level : odd::proto::job_levels(*parsed)) placed += level.size();
  check(placed == parsed->jobs.size());
  return 0;
}
