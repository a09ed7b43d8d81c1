// How failures and finished runs map to oddc's exit codes (DESIGN §4).
#include "oddc/exit_codes.hpp"

#include <doctest/doctest.h>

namespace odd::oddc {
namespace {

using proto::JobState;
using proto::RunState;

proto::JobSummary job(JobState state, std::optional<std::int64_t> exit_code,
                      std::optional<std::string> error = std::nullopt) {
  proto::JobSummary j;
  j.key = "test-" + std::string(proto::to_string(state));
  j.state = state;
  j.exit_code = exit_code;
  j.error = std::move(error);
  return j;
}

proto::RunSummary summary(RunState state, std::vector<proto::JobSummary> jobs) {
  proto::RunSummary s;
  s.run_id = "20261122-142030Z-3f2a";
  s.name = "distro-matrix";
  s.state = state;
  s.jobs = std::move(jobs);
  return s;
}

TEST_CASE("a run whose every job succeeded exits 0") {
  CHECK(exit_code_for(summary(RunState::kSucceeded, {job(JobState::kSucceeded, 0),
                                                     job(JobState::kSkipped, std::nullopt)})) == 0);
}

TEST_CASE("a test that failed or timed out exits 1") {
  CHECK(exit_code_for(summary(RunState::kFailed,
                              {job(JobState::kSucceeded, 0), job(JobState::kFailed, 1)})) == 1);
  CHECK(exit_code_for(summary(RunState::kFailed, {job(JobState::kTimedOut, std::nullopt)})) == 1);
  CHECK(exit_code_for(summary(RunState::kFailed,
                              {job(JobState::kFailed, 137), job(JobState::kCancelled, 0)})) == 1);
}

TEST_CASE("a job that failed without an exit code is an infrastructure failure: 5") {
  CHECK(exit_code_for(
            summary(RunState::kFailed, {job(JobState::kFailed, std::nullopt,
                                            "building odd-arch: dockerd: no such file")})) == 5);
  CHECK(exit_code_for(summary(RunState::kFailed, {job(JobState::kCancelled, std::nullopt)})) == 5);
  CHECK(exit_code_for(summary(RunState::kFailed, {})) == 5);
}

TEST_CASE("a red test wins over an infrastructure failure in the same run") {
  CHECK(exit_code_for(summary(RunState::kFailed, {job(JobState::kFailed, std::nullopt, "ssh"),
                                                  job(JobState::kFailed, 2)})) == 1);
}

TEST_CASE("a cancelled run exits 130 and a run not yet ended 5") {
  CHECK(exit_code_for(summary(RunState::kCancelled, {job(JobState::kFailed, 1)})) == 130);
  CHECK(exit_code_for(summary(RunState::kRunning, {})) == 5);
  CHECK(exit_code_for(summary(RunState::kQueued, {})) == 5);
}

TEST_CASE("the run object maps the same way as its summary") {
  proto::RunInfo run;
  run.state = RunState::kFailed;
  proto::JobStatus failed;
  failed.state = JobState::kFailed;
  failed.exit_code = 3;
  run.jobs = {failed};
  CHECK(exit_code_for(run) == 1);
  run.jobs[0].exit_code.reset();
  CHECK(exit_code_for(run) == 5);
  run.state = RunState::kSucceeded;
  CHECK(exit_code_for(run) == 0);
}

TEST_CASE("errors map by code: usage 2, unreachable 3, not found 4, cancelled 130, others 5") {
  CHECK(exit_code_for(ok_status()) == 0);
  CHECK(exit_code_for(invalid_argument("jobs.test: ...")) == 2);
  CHECK(exit_code_for(unavailable("no daemon running on /x")) == 3);
  CHECK(exit_code_for(not_found("no run x")) == 4);
  CHECK(exit_code_for(cancelled("x")) == 130);
  for (auto code : {Code::kAlreadyExists, Code::kFailedPrecondition, Code::kPermissionDenied,
                    Code::kDeadlineExceeded, Code::kInternal}) {
    CHECK(exit_code_for(Status(code, "x")) == 5);
  }
}

}  // namespace
}  // namespace odd::oddc
