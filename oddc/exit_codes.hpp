#pragma once
// oddc's exit codes (DESIGN §4) and how failures and finished runs map to them, so CI can tell a
// red test (1) from a broken runner (5). Pure functions; any thread.

#include "common/status.hpp"
#include "proto/api_types.hpp"

namespace odd::oddc {

inline constexpr int kExitOk = 0;
inline constexpr int kExitTestFailed = 1;   // a job failed with an exit code, or timed out
inline constexpr int kExitUsage = 2;        // usage or spec error
inline constexpr int kExitUnreachable = 3;  // no daemon, or no permission to reach it
inline constexpr int kExitNotFound = 4;
inline constexpr int kExitInfra = 5;  // the run failed for infrastructure reasons; other errors
inline constexpr int kExitCancelled = 130;

// invalid_argument 2; not_found 4; unavailable 3 (the client reports every failure to reach or
// keep talking to the daemon as unavailable, and a daemon's 503 means it cannot serve now);
// cancelled 130; anything else 5.
int exit_code_for(const Status& status);

// succeeded 0; cancelled 130; failed: 1 when some job failed with a non-zero exit code or timed
// out (a test failed), otherwise 5 (a job failed without an exit code: build failure, dockerd or
// a host unreachable). A run not yet final is 5: the caller expected it to have ended.
int exit_code_for(const proto::RunSummary& summary);

// The same rule over the run object (GET /v1/runs/{id}), for when no summary can be had.
int exit_code_for(const proto::RunInfo& run);

}  // namespace odd::oddc
