#pragma once
// Logging setup shared by oddd, oddc, tests and benchmarks: one spdlog default logger writing to
// stderr. Call once from main() before any other thread starts.

#include <string_view>

#include "common/status.hpp"

namespace odd {

// Sets the default logger's level from "trace|debug|info|warn|error|off".
// Returns invalid_argument naming the accepted levels for anything else.
Status init_logging(std::string_view level);

}  // namespace odd
