#pragma once
// How oddc shows runs: the live view of `run` folded from the run's events (on a terminal a block
// of progress bars redrawn in place; otherwise plain lines, rate-limited, for CI logs), the final
// summary, and the tables of `ls` and `status`. Pure: every call returns the text to write and
// takes the time as an argument, so all of it is unit-tested. A renderer has one owner and is not
// thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/api_types.hpp"

namespace odd::oddc {

using SteadyTime = std::chrono::steady_clock::time_point;

// Plain mode prints a job's progress at most this often; the TTY block redraws at most this
// often for progress alone (state changes redraw at once).
inline constexpr std::chrono::milliseconds kPlainProgressInterval{1000};
inline constexpr std::chrono::milliseconds kTtyRedrawInterval{100};
inline constexpr std::size_t kProgressBarWidth = 20;

// What the events so far say about one job.
struct JobView {
  std::string key;
  proto::JobState state = proto::JobState::kPending;
  std::uint32_t attempt = 0;
  std::optional<std::int64_t> exit_code;
  std::optional<std::string> error;
  proto::Progress progress;
};

// Folds a run's events into job views, jobs in the order they first appear. Events it does not
// know, and payload keys that are missing or of another type, leave the view as it was.
class RunView {
 public:
  enum class Change { kNone, kRunState, kJobState, kJobProgress };
  struct Applied {
    Change change = Change::kNone;
    std::size_t job = 0;  // index into jobs() for the job changes
  };
  Applied apply(const proto::Event& event);

  const std::vector<JobView>& jobs() const { return jobs_; }
  std::optional<proto::RunState> run_state() const { return run_state_; }

 private:
  std::size_t job_index(const std::string& key);

  std::vector<JobView> jobs_;
  std::optional<proto::RunState> run_state_;
};

// "[#######-------------]": `width` cells between brackets, filled in proportion done/total
// (done beyond total counts as total; total 0 is an empty bar).
std::string progress_bar(const proto::Progress& progress, std::size_t width = kProgressBarWidth);

// A job's line in the TTY block: its key padded to `key_width`, then the bar with "done/total
// label" when the job has reported progress, then its state unless it is running with progress;
// cut to `columns` - 1 characters so the terminal never wraps it.
std::string job_line(const JobView& job, std::size_t key_width, std::size_t columns);

// A job's state change as plain text: "test-arch: running (attempt 2)", "test-arch: failed
// (exit 1)", "test-arch: failed: <error>".
std::string job_state_text(const JobView& job);

// "6m41s", "41s", "1h02m03s".
std::string format_duration(std::chrono::seconds duration);

// Renders the live view of a run. Every method returns what to write to the output.
class Renderer {
 public:
  virtual ~Renderer() = default;
  // The run's id is known (the submit stream's first line).
  virtual std::string started(std::string_view run_id) = 0;
  virtual std::string event(const proto::Event& event, SteadyTime now) = 0;
  // Whole lines to show as they are (job log lines, notices); `text` ends in "\n".
  virtual std::string lines(std::string_view text) = 0;
  // Called periodically: what rate limiting held back and is now due.
  virtual std::string tick(SteadyTime now) = 0;
  // The run ended: the final state of the live view.
  virtual std::string finish() = 0;
};

// The TTY view: state changes as lines, under them one line per job redrawn in place with ANSI
// cursor movement; `columns` is the terminal's width.
std::unique_ptr<Renderer> make_tty_renderer(std::size_t columns);
// The plain view: a line per state change and per progress change, at most one progress line
// per job each kPlainProgressInterval (the latest is printed when its interval ends).
std::unique_ptr<Renderer> make_plain_renderer();
// Nothing at all (-q and --json; the caller prints the summary).
std::unique_ptr<Renderer> make_quiet_renderer();

// Prefixes each whole line of a byte stream ("[test-arch] "). A line longer than 64 KiB is
// split, so the partial line held back is bounded.
class LinePrefixer {
 public:
  explicit LinePrefixer(std::string prefix) : prefix_(std::move(prefix)) {}
  // The lines `bytes` completes, prefixed, each ending in "\n".
  std::string feed(std::string_view bytes);
  // A last line without its "\n", prefixed and ended; empty when there is none.
  std::string flush();

 private:
  std::string prefix_;
  std::string partial_;
};

// A job's suites by outcome: a failure expected as xfail counts as xfail, not failed.
struct SuiteCounts {
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t xfail = 0;
  std::size_t skipped = 0;
  std::vector<std::string> failed_names;
};
SuiteCounts count_suites(const std::vector<proto::SuiteResult>& suites);

// The final summary: a line per job (key, state, exit code, attempts, duration, suites passed,
// failed and xfail, the failed suites' names, the error), then
// "distro-matrix 20261122-142030Z-3f2a: failed (3 succeeded, 1 failed)".
std::string render_summary(const proto::RunSummary& summary);

// `oddc ls`: a table of runs, newest first as given.
std::string render_run_list(const std::vector<proto::RunInfo>& runs);
// `oddc status`: the run's fields, then a table of its jobs.
std::string render_run(const proto::RunInfo& run);

// One remote host as GET /v1/health reports it; "" / 0 for what the daemon left out.
struct HostView {
  std::string name;
  std::string address;  // "10.0.0.85:22"
  std::string state;    // "idle", "connected", "failing"
  std::int64_t sessions = 0;
  std::int64_t in_use = 0;
  std::string error;
};
// `oddc hosts`: a table of the daemon's remote hosts in the order given, or a line saying it
// has none.
std::string render_hosts(const std::vector<HostView>& hosts);

}  // namespace odd::oddc
