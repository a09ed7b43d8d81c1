#include "oddc/exit_codes.hpp"

namespace odd::oddc {

namespace {

bool is_test_failure(proto::JobState state, const std::optional<std::int64_t>& exit_code) {
  if (state == proto::JobState::kTimedOut) return true;
  return state == proto::JobState::kFailed && exit_code.has_value() && *exit_code != 0;
}

template <class Jobs>
int exit_code_for_run(proto::RunState state, const Jobs& jobs) {
  switch (state) {
    case proto::RunState::kSucceeded:
      return kExitOk;
    case proto::RunState::kCancelled:
      return kExitCancelled;
    case proto::RunState::kFailed:
      break;
    case proto::RunState::kQueued:
    case proto::RunState::kRunning:
      return kExitInfra;
  }
  // A red test is a finding about the code under test even when another job also broke on
  // infrastructure, so it wins: the developer has something to fix either way.
  for (const auto& job : jobs) {
    if (is_test_failure(job.state, job.exit_code)) return kExitTestFailed;
  }
  return kExitInfra;
}

}  // namespace

int exit_code_for(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
      return kExitUsage;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kUnavailable:
      return kExitUnreachable;
    case Code::kCancelled:
      return kExitCancelled;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
    case Code::kPermissionDenied:
    case Code::kDeadlineExceeded:
    case Code::kInternal:
      return kExitInfra;
  }
  return kExitInfra;
}

int exit_code_for(const proto::RunSummary& summary) {
  return exit_code_for_run(summary.state, summary.jobs);
}

int exit_code_for(const proto::RunInfo& run) { return exit_code_for_run(run.state, run.jobs); }

}  // namespace odd::oddc
