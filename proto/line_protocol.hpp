#pragma once
// The lines the daemon understands on a job's stdout (DESIGN §7): `PB> done/total label`
// (progress), `PASS|FAIL|SKIP <suite>` with an optional ` [xfail]` (suite results), a leading
// `[v0]`..`[v3]` (verbosity class) and `::set-output name=KEY::VALUE` (a step output).
// Pure readers: lines are never rewritten. Safe from any thread.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "proto/api_types.hpp"

namespace odd::proto {

// `line` is one line without its '\n'; a trailing '\r' is ignored. Returns {KEY, VALUE} for
// `::set-output name=KEY::VALUE` at the start of the line, KEY an identifier
// ([A-Za-z_][A-Za-z0-9_-]*), VALUE the rest of the line (may be empty or contain "::").
std::optional<std::pair<std::string, std::string>> parse_set_output(std::string_view line);

enum class LineKind { kText, kProgress, kSuite, kSetOutput };

// What a line says. The verbosity prefix (and one space after it) comes off first; the rest is
// then read as progress, a suite result or a set-output line, or is plain text.
struct LineInfo {
  std::optional<int> verbosity;  // 0..3 for a line starting with [v0]..[v3]
  LineKind kind = LineKind::kText;
  std::optional<Progress> progress;                           // kProgress: done <= total
  std::optional<SuiteResult> suite;                           // kSuite: expect "xfail" or none
  std::optional<std::pair<std::string, std::string>> output;  // kSetOutput: {KEY, VALUE}
};

LineInfo classify_line(std::string_view line);

}  // namespace odd::proto
