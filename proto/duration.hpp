#pragma once
// Durations as the run spec writes them: "90s", "30m", "1h30m", "500ms", "2h". Values only.

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::proto {

using Millis = std::chrono::milliseconds;

// Parses a sequence of <digits><unit> with units h, m, s, ms, each at most once and in that
// order ("1h30m", not "30m1h"). invalid_argument quoting `text` for anything else, a zero
// duration, or one longer than 30 days.
Result<Millis> parse_duration(std::string_view text);

// The shortest spelling parse_duration reads back: "1h30m", "90s" is "1m30s", "250ms".
std::string format_duration(Millis duration);

}  // namespace odd::proto
