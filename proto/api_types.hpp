#pragma once
// The control API's types and their JSON codecs (DESIGN §8, §9): states, the run object, events,
// per-job and aggregate summaries, the submit request, the error body, run ids and timestamps.
// Values only, no I/O; safe from any thread.
//
// Encoding writes every key of a shape in the order DESIGN shows, null where a value is unknown.
// Decoding is strict: a missing key or a wrong type is invalid_argument naming the key's path
// ("jobs[0].exit_code: expected an integer or null, got string"). Keys a newer daemon may add are
// ignored in responses; a SubmitRequest (a request body) refuses unknown keys.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"

namespace odd::proto {

// Objects keep their keys in insertion order, so what is written reads in schema order.
using Json = nlohmann::ordered_json;

// Whole seconds, UTC: all the API's times have this resolution.
using Timestamp = std::chrono::sys_seconds;

// "2026-11-22T14:20:30Z": RFC 3339, UTC, whole seconds.
std::string format_rfc3339(Timestamp time);
// Exactly the form format_rfc3339 writes; invalid_argument quoting `text` otherwise.
Result<Timestamp> parse_rfc3339(std::string_view text);
// "20261122-142030Z": the run id's and log file names' time stamp.
std::string format_compact_utc(Timestamp time);

// "<YYYYMMDD-HHMMSSZ>-<4 lowercase hex>" from `now` (floored to seconds) and `random`.
std::string make_run_id(std::chrono::system_clock::time_point now, std::uint16_t random);
// Whether `id` has exactly that form with a real date and time; a run id is safe as a path part.
bool valid_run_id(std::string_view id);

enum class RunState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
enum class JobState {
  kPending,
  kRunning,
  kRetrying,
  kSucceeded,
  kFailed,
  kTimedOut,
  kCancelled,
  kSkipped
};
enum class SuiteStatus { kPass, kFail, kSkip };

// "queued", "timed_out", "pass", ...; parse_* give invalid_argument naming the accepted values.
std::string_view to_string(RunState state);
std::string_view to_string(JobState state);
std::string_view to_string(SuiteStatus status);
Result<RunState> parse_run_state(std::string_view text);
Result<JobState> parse_job_state(std::string_view text);
Result<SuiteStatus> parse_suite_status(std::string_view text);
// Whether nothing more will happen to a run or job in that state.
bool is_final(RunState state);
bool is_final(JobState state);

// Name → value, for outputs; the same type as TemplateValues (proto/template.hpp).
using OutputMap = std::map<std::string, std::string, std::less<>>;
// A job's matrix values as the spec wrote them (before sanitising), in the spec's key order.
using MatrixValues = std::vector<std::pair<std::string, std::string>>;

// Who submitted a run (SO_PEERCRED of the control connection).
struct Caller {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int32_t pid = 0;
  friend bool operator==(const Caller&, const Caller&) = default;
};

// A job's progress, from its last `PB> done/total label` line.
struct Progress {
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  std::string label;
  friend bool operator==(const Progress&, const Progress&) = default;
};

// One `PASS|FAIL|SKIP <suite> [xfail]` line; summaries list them as {"name","status","expect"}.
struct SuiteResult {
  std::string name;
  SuiteStatus status = SuiteStatus::kPass;
  std::optional<std::string> expect;  // "xfail"; the key is left out when absent
  friend bool operator==(const SuiteResult&, const SuiteResult&) = default;
};

// A job of a run as GET /v1/runs/{id} shows it.
struct JobStatus {
  std::string key;  // "test-arch"
  std::string job;  // "test"
  MatrixValues matrix;
  std::string host;
  JobState state = JobState::kPending;
  std::uint32_t attempt = 0;  // 1 for the first attempt; 0 before it starts
  std::optional<std::int64_t> exit_code;
  Progress progress;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  OutputMap outputs;
  friend bool operator==(const JobStatus&, const JobStatus&) = default;
};

// The run object of GET /v1/runs and GET /v1/runs/{id}.
struct RunInfo {
  std::string id;
  std::string name;
  RunState state = RunState::kQueued;
  Timestamp created_at{};
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  Caller caller;
  std::vector<JobStatus> jobs;
  friend bool operator==(const RunInfo&, const RunInfo&) = default;
};

// Event types (the "type" key).
inline constexpr std::string_view kEventRunState = "run.state";
inline constexpr std::string_view kEventJobState = "job.state";
inline constexpr std::string_view kEventStepStart = "step.start";
inline constexpr std::string_view kEventStepEnd = "step.end";
inline constexpr std::string_view kEventBuildProgress = "build.progress";
inline constexpr std::string_view kEventJobProgress = "job.progress";
inline constexpr std::string_view kEventSuite = "suite";
inline constexpr std::string_view kEventLogGap = "log.gap";
inline constexpr std::string_view kEventAttemptRetry = "attempt.retry";

// One line of a run's event stream: {"seq","ts","run","job","type", ...payload}. "job" is null
// for run-level events. Payload keys sit beside the envelope's; one that collides with an
// envelope key is not written.
struct Event {
  std::uint64_t seq = 0;
  Timestamp ts{};
  std::string run;
  std::optional<std::string> job;  // a job key
  std::string type;
  Json payload = Json::object();
  friend bool operator==(const Event&, const Event&) = default;
};

// runs/<id>/jobs/<key>/summary.json: the stable keys of DESIGN §9, always all present, and
// `logs`, which summaries written before it lack.
struct JobSummary {
  struct LogPaths {
    std::optional<std::string> stdout_path;  // "stdout"
    std::optional<std::string> stderr_path;  // "stderr"
    friend bool operator==(const LogPaths&, const LogPaths&) = default;
  };
  // The log pair of one container or exec step of one attempt.
  struct StepLog {
    std::string step;  // the step's id, or "<kind>#<n>"
    std::uint32_t attempt = 1;
    std::string name;         // the container (or exec step) its files are named after
    std::string stdout_path;  // "stdout"
    std::string stderr_path;  // "stderr"
    friend bool operator==(const StepLog&, const StepLog&) = default;
  };
  std::string run_id;
  std::string job;
  std::string key;
  MatrixValues matrix;
  std::string host;
  std::optional<std::string> image;
  std::optional<std::string> image_digest;
  std::optional<std::string> container_id;
  std::optional<std::string> container_name;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  JobState state = JobState::kPending;
  std::optional<std::int64_t> exit_code;
  std::uint32_t attempts = 0;
  std::optional<std::string> error;
  LogPaths log_paths;         // the newest of `logs`
  std::vector<StepLog> logs;  // every attempt's, in the order they were opened
  std::vector<SuiteResult> suites;
  OutputMap outputs;
  friend bool operator==(const JobSummary&, const JobSummary&) = default;
};

// How many jobs ended in each final state, for the aggregate summary.
struct JobCounts {
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t skipped = 0;
  friend bool operator==(const JobCounts&, const JobCounts&) = default;
};
JobCounts count_jobs(const std::vector<JobSummary>& jobs);

// runs/<id>/summary.json and GET /v1/runs/{id}/summary.
struct RunSummary {
  std::string run_id;
  std::string name;
  RunState state = RunState::kQueued;
  std::optional<Timestamp> started_at;
  std::optional<Timestamp> finished_at;
  std::optional<std::int64_t> duration_ms;
  Caller caller;
  JobCounts counts;
  std::vector<JobSummary> jobs;
  friend bool operator==(const RunSummary&, const RunSummary&) = default;
};

// The body of POST /v1/runs. Exactly one of `spec` (a JSON object) and `spec_text` (YAML or JSON
// text) is set; `workdir` is absolute (the caller's working directory).
struct SubmitRequest {
  std::optional<Json> spec;
  std::optional<std::string> spec_text;
  OutputMap vars;     // strings only: oddc turns -e values into strings
  OutputMap secrets;  // never stored
  std::string workdir;
  bool detach = false;
  friend bool operator==(const SubmitRequest&, const SubmitRequest&) = default;
};
// ok, or invalid_argument naming the key at fault ("workdir: must be an absolute path ...").
Status validate(const SubmitRequest& request);

// The error body of every failed request: {"error": {"code", "message", "path"}}; "path" is the
// spec or body path at fault, null when there is none.
struct ApiError {
  Code code = Code::kInternal;
  std::string message;
  std::string path;  // empty: none
  friend bool operator==(const ApiError&, const ApiError&) = default;

  // An ok status (a caller's bug) becomes internal.
  static ApiError from_status(const Status& status, std::string path = "");
  Status to_status() const;
};

// The HTTP status for a code: invalid_argument 400, permission_denied 403, not_found 404,
// already_exists and failed_precondition 409, cancelled 499 (nginx's "client closed request"),
// internal 500, unavailable 503, deadline_exceeded 504; ok 200.
unsigned http_status(Code code);
// The inverse of code_name(); invalid_argument for an unknown name.
Result<Code> parse_code_name(std::string_view name);

Json encode(const Caller& caller);
Json encode(const Progress& progress);
Json encode(const SuiteResult& suite);
Json encode(const JobStatus& job);
Json encode(const RunInfo& run, bool with_jobs = true);
Json encode(const Event& event);
Json encode(const JobSummary& summary);
Json encode(const JobCounts& counts);
Json encode(const RunSummary& summary);
Json encode(const SubmitRequest& request);
Json encode(const ApiError& error);

Result<Caller> decode_caller(const Json& json);
Result<Progress> decode_progress(const Json& json);
Result<SuiteResult> decode_suite_result(const Json& json);
Result<JobStatus> decode_job_status(const Json& json);
Result<RunInfo> decode_run_info(const Json& json);  // "jobs" may be absent: then empty
Result<Event> decode_event(const Json& json);       // "job" may be absent or null
Result<JobSummary> decode_job_summary(const Json& json);
Result<JobCounts> decode_job_counts(const Json& json);
Result<RunSummary> decode_run_summary(const Json& json);
Result<SubmitRequest> decode_submit_request(const Json& json);  // also validate()s
Result<ApiError> decode_api_error(const Json& json);

}  // namespace odd::proto
