#pragma once
// RunExecution: one run's state machine (DESIGN §3, §5, §6): jobs in `needs` order (a DAG over
// matrix instances), at most `concurrency` of the run and the daemon's global cap at once, steps in
// order, a deadline per attempt, retries of retryable failures with exponential backoff and jitter
// capped at 60 s, fail-fast, cancellation — with container cleanup that no cancellation skips.
// It owns the run's live model (RunInfo and per-job summaries) and reports every change to a
// RunObserver. Runs on the daemon's I/O strand; never sees HTTP or SSH (ContainerEngine and
// RemoteHost are its seams).

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/status.hpp"
#include "daemon/container_engine.hpp"
#include "daemon/log_capture.hpp"
#include "daemon/notifier.hpp"
#include "daemon/remote_host.hpp"
#include "proto/api_types.hpp"
#include "proto/matrix.hpp"
#include "proto/spec.hpp"
#include "proto/template.hpp"

namespace odd::daemon {

inline constexpr std::chrono::milliseconds kMaxBackoff{60'000};

// The delay before retry number `retry` (1 for the first retry): `first` doubled per retry, capped
// at kMaxBackoff, then jittered to a uniform value in [delay/2, delay] from `random` in [0, 1).
std::chrono::milliseconds backoff_delay(std::chrono::milliseconds first, int retry, double random);

// What a run needs from the daemon around it. Owned by the daemon; outlives every run.
struct SchedulerEnv {
  Clock* clock = nullptr;
  // The container runtime of a host: "local", or a remote host with `docker: true`; nullptr
  // when there is none.
  std::function<ContainerEngine*(const std::string& host)> engine_for;
  // The remote host of that name from the daemon's config, or nullptr ("local", unknown, or
  // removed by a reload). A step holds the pointer while it runs, so a reload that replaces the
  // host does not pull it from under the step.
  std::function<std::shared_ptr<RemoteHost>(const std::string& host)> remote_for;
  Semaphore* global_slots = nullptr;  // the daemon's max_concurrency
  // ok, or permission_denied naming the path and what it is ("bind mount source").
  std::function<Status(const std::filesystem::path&, std::string_view what)> check_path;
  // The directory of a named cache, created on demand; invalid_argument for a bad name.
  std::function<Result<std::filesystem::path>(const std::string& name)> cache_dir;
  std::string instance_id;      // the odd.daemon label
  std::string default_network;  // "" keeps dockerd's default
  std::chrono::seconds stop_grace{10};
  std::function<double()> random;  // uniform in [0, 1), for backoff jitter
};

// A run ready to execute: a spec that passed validation and the request's inputs.
struct RunPlan {
  std::string run_id;
  proto::RunSpec spec;
  std::vector<proto::JobInstance> instances;
  proto::TemplateValues vars;     // the spec's vars overridden by the request's
  proto::TemplateValues secrets;  // name → value; never stored
  std::string workdir;
};

// A container attempt's log as the scheduler sees it; the daemon's is a LogCapture, which reports
// progress, suites and outputs to the CaptureListener it was opened with.
class JobLog {
 public:
  virtual ~JobLog() = default;
  virtual void write(OutputStream stream, std::string_view bytes) = 0;
  // Ends the log; errors (disk full) are reported, not fatal to the job.
  virtual Status close() = 0;
  virtual std::filesystem::path stdout_path() const = 0;
  virtual std::filesystem::path stderr_path() const = 0;
};

// Where a run's changes go: the store, event followers, log files. Called on the I/O strand.
class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // A new event of the run ("job" empty for run-level ones). `durable`: it records a state change
  // or an intent (a container about to be created) and must be on disk before this returns.
  virtual void on_event(const std::optional<std::string>& job, std::string_view type,
                        proto::Json payload, bool durable) = 0;
  // Opens the log capture of one container attempt (or exec step) of job `key`; `name` names its
  // files.
  virtual Result<std::unique_ptr<JobLog>> open_capture(const std::string& key,
                                                       const std::string& container_name,
                                                       CaptureListener listener) = 0;
  // The directory downloads of job `key` land in (runs/<id>/artifacts/<key>/), created on
  // demand; errors name the path.
  virtual Result<std::filesystem::path> download_dir(const std::string& key) = 0;
  // The container of job `key` exists: write its cidfile.
  virtual void on_container(const std::string& key, const std::string& container_name,
                            const std::string& container_id) = 0;
  // Job `key` reached a final state; its summary is final too.
  virtual void on_job_final(const proto::JobSummary& summary) = 0;
};

class RunExecution {
 public:
  // `plan.instances` must be the expansion of `plan.spec`. `caller` and `created_at` go into the
  // run object.
  RunExecution(SchedulerEnv& env, RunObserver& observer, RunPlan plan, proto::Caller caller,
               proto::Timestamp created_at);
  ~RunExecution();
  RunExecution(const RunExecution&) = delete;
  RunExecution& operator=(const RunExecution&) = delete;

  // Runs every job to a final state and returns when the run is final (all cleanup done).
  // Must be awaited once. Cancelling the awaiting coroutine acts like cancel("daemon stopping").
  asio::awaitable<void> run();

  // Cancels the run: running jobs are stopped (cleanup still runs), pending ones cancelled. The
  // run ends `cancelled`. No effect once the run is final, or on a second call.
  void cancel(const std::string& reason);

  const proto::RunInfo& info() const { return info_; }
  const std::vector<proto::JobSummary>& job_summaries() const { return summaries_; }
  // The aggregate summary of the run as it stands.
  proto::RunSummary summary() const;
  bool final() const { return proto::is_final(info_.state); }
  const std::string& error() const { return error_; }

 private:
  struct Job;
  struct Attempt;

  // What `${{ }}` sees in a step of `job` during `attempt`.
  proto::TemplateContext step_context(const Job& job, const Attempt& attempt) const;
  asio::awaitable<void> run_job(std::size_t index);
  asio::awaitable<Status> run_attempt(Job& job, Attempt& attempt);
  asio::awaitable<Status> run_steps(Job& job, Attempt& attempt);
  asio::awaitable<Status> run_build_step(Job& job, Attempt& attempt, std::size_t step_index);
  asio::awaitable<Status> run_container_step(Job& job, Attempt& attempt, std::size_t step_index);
  asio::awaitable<Status> run_exec_step(Job& job, Attempt& attempt, std::size_t step_index);
  asio::awaitable<Status> run_upload_step(Job& job, Attempt& attempt, std::size_t step_index);
  asio::awaitable<Status> run_download_step(Job& job, Attempt& attempt, std::size_t step_index);
  // The log of one container attempt or exec step (`step`, its label), its lines feeding
  // progress, suites and outputs of `job` and `attempt`; added to the job summary's logs.
  Result<std::unique_ptr<JobLog>> open_job_log(Job& job, Attempt& attempt, const std::string& name,
                                               const std::string& step);
  // The job's remote host, or failed_precondition naming `path` and the host.
  Result<std::shared_ptr<RemoteHost>> remote_of(const Job& job, const std::string& path) const;
  // The job's container engine, or failed_precondition naming the host.
  Result<ContainerEngine*> engine_of(const Job& job) const;
  asio::awaitable<void> cleanup_container(Job& job, const std::string& name, bool keep);

  void set_run_state(proto::RunState state);
  void set_job_state(Job& job, proto::JobState state);
  void emit(const Job* job, std::string_view type, proto::Json payload, bool durable = false);
  void fail_fast_from(const Job& job);
  void cancel_job(Job& job, const std::string& reason);
  std::string mask(std::string text) const;

  SchedulerEnv& env_;
  RunObserver& observer_;
  RunPlan plan_;
  proto::RunInfo info_;
  std::vector<proto::JobSummary> summaries_;
  std::vector<std::unique_ptr<Job>> jobs_;
  Semaphore run_slots_;
  Notifier changed_;
  bool cancel_requested_ = false;
  bool failed_fast_ = false;
  std::string error_;
  std::vector<std::string> secret_values_;
};

}  // namespace odd::daemon
