// oddc's renderers: the progress bar, the TTY block redrawn in place, plain lines with their
// rate limit, log line prefixes, the final summary and the tables.
#include "oddc/render.hpp"

#include <doctest/doctest.h>

namespace odd::oddc {
namespace {

using namespace std::chrono_literals;
using proto::Json;

const SteadyTime kT0 = SteadyTime() + 1000s;

proto::Event event(std::uint64_t seq, std::optional<std::string> job, std::string_view type,
                   Json payload) {
  proto::Event e;
  e.seq = seq;
  e.run = "20261122-142030Z-3f2a";
  e.job = std::move(job);
  e.type = std::string(type);
  e.payload = std::move(payload);
  return e;
}

proto::Event state(const std::string& job, std::string_view s, Json extra = Json::object()) {
  extra["state"] = s;
  return event(1, job, proto::kEventJobState, std::move(extra));
}

proto::Event progress(const std::string& job, std::uint64_t done, std::uint64_t total,
                      std::string label) {
  return event(2, job, proto::kEventJobProgress,
               Json{{"done", done}, {"total", total}, {"label", std::move(label)}});
}

proto::Timestamp at(std::string_view text) { return proto::parse_rfc3339(text).value(); }

TEST_CASE("the progress bar fills in proportion to done over total") {
  CHECK(progress_bar({0, 12, ""}, 12) == "[------------]");
  CHECK(progress_bar({7, 12, ""}, 12) == "[#######-----]");
  CHECK(progress_bar({12, 12, ""}, 12) == "[############]");
  CHECK(progress_bar({15, 12, ""}, 12) == "[############]");
  CHECK(progress_bar({1, 3, ""}, 20) == "[######--------------]");
  CHECK(progress_bar({5, 0, ""}, 4) == "[----]");
}

TEST_CASE(
    "a job's TTY line shows its key, bar, counts and label, then its state when not running") {
  JobView job;
  job.key = "test-arch";
  job.state = proto::JobState::kRunning;
  job.progress = {7, 12, "suite-name"};
  CHECK(job_line(job, 12, 200) == "test-arch     [###########---------]  7/12 suite-name");
  job.state = proto::JobState::kFailed;
  job.exit_code = 1;
  CHECK(job_line(job, 9, 200) ==
        "test-arch  [###########---------]  7/12 suite-name  failed (exit 1)");
  JobView pending;
  pending.key = "flux";
  CHECK(job_line(pending, 9, 200) == "flux       pending");
  pending.state = proto::JobState::kRunning;
  pending.attempt = 2;
  CHECK(job_line(pending, 4, 200) == "flux  running (attempt 2)");
}

TEST_CASE("a TTY line is cut to the terminal's width and control characters are replaced") {
  JobView job;
  job.key = "test-arch";
  job.state = proto::JobState::kRunning;
  job.progress = {1, 2, "a\x1b[2Jb"};
  CHECK(job_line(job, 9, 200) == "test-arch  [##########----------]  1/2 a?[2Jb");
  CHECK(job_line(job, 9, 21) == "test-arch  [########");
  job.progress.label = "\xc3\xa9t\xc3\xa9";
  const std::string line = job_line(job, 9, 42);
  CHECK(line == "test-arch  [##########----------]  1/2 \xc3\xa9t");
}

TEST_CASE("the TTY view redraws its block in place under new lines") {
  auto tty = make_tty_renderer(80);
  CHECK(tty->started("20261122-142030Z-3f2a") == "run 20261122-142030Z-3f2a\n");
  CHECK(tty->event(state("test-arch", "running", {{"attempt", 1}}), kT0) ==
        "test-arch: running\n"
        "test-arch  running\n");
  CHECK(tty->event(state("test-manjaro", "running", {{"attempt", 1}}), kT0 + 1s) ==
        "\r\x1b[1A\x1b[J"
        "test-manjaro: running\n"
        "test-arch     running\n"
        "test-manjaro  running\n");
  CHECK(tty->event(progress("test-arch", 7, 12, "suite"), kT0 + 2s) ==
        "\r\x1b[2A\x1b[J"
        "test-arch     [###########---------]  7/12 suite\n"
        "test-manjaro  running\n");
  CHECK(tty->lines("[test-arch] hello\n") ==
        "\r\x1b[2A\x1b[J"
        "[test-arch] hello\n"
        "test-arch     [###########---------]  7/12 suite\n"
        "test-manjaro  running\n");
  CHECK(tty->event(state("test-arch", "failed", {{"exit_code", 1}}), kT0 + 3s) ==
        "\r\x1b[2A\x1b[J"
        "test-arch: failed (exit 1)\n"
        "test-arch     [###########---------]  7/12 suite  failed (exit 1)\n"
        "test-manjaro  running\n");
}

TEST_CASE("the TTY view redraws progress alone at most every 100 ms; tick catches up") {
  auto tty = make_tty_renderer(80);
  CHECK_FALSE(tty->event(state("a", "running"), kT0).empty());
  CHECK_FALSE(tty->event(progress("a", 1, 4, ""), kT0 + 200ms).empty());
  CHECK(tty->event(progress("a", 2, 4, ""), kT0 + 250ms).empty());
  CHECK(tty->tick(kT0 + 260ms).empty());
  CHECK(tty->tick(kT0 + 300ms) == "\r\x1b[1A\x1b[Ja  [##########----------]  2/4\n");
  CHECK(tty->tick(kT0 + 320ms).empty());
  CHECK(tty->event(progress("a", 3, 4, ""), kT0 + 350ms).empty());
  CHECK(tty->finish() == "\r\x1b[1A\x1b[Ja  [###############-----]  3/4\n");
  CHECK(tty->finish().empty());
}

TEST_CASE("plain mode prints a line per state change and ignores repeats") {
  auto plain = make_plain_renderer();
  CHECK(plain->started("20261122-142030Z-3f2a") == "run 20261122-142030Z-3f2a\n");
  CHECK(plain->event(event(1, std::nullopt, proto::kEventRunState, {{"state", "running"}}), kT0) ==
        "run 20261122-142030Z-3f2a: running\n");
  CHECK(plain->event(state("test-arch", "pending"), kT0).empty());
  CHECK(plain->event(state("test-arch", "running", {{"attempt", 1}}), kT0) ==
        "test-arch: running\n");
  CHECK(plain->event(state("test-arch", "running", {{"attempt", 1}}), kT0).empty());
  CHECK(plain->event(state("test-arch", "retrying", {{"error", "dockerd: EOF"}}), kT0) ==
        "test-arch: retrying: dockerd: EOF\n");
  CHECK(plain->event(state("test-arch", "running", {{"attempt", 2}, {"error", nullptr}}), kT0) ==
        "test-arch: running (attempt 2)\n");
  CHECK(plain->event(state("test-arch", "succeeded", {{"exit_code", 0}}), kT0) ==
        "test-arch: succeeded (exit 0)\n");
  CHECK(plain->event(state("b", "failed", {{"error", "build failed"}}), kT0) ==
        "b: failed: build failed\n");
  CHECK(plain->event(event(9, std::nullopt, proto::kEventRunState, {{"state", "failed"}}), kT0)
            .empty());
  CHECK(plain->event(event(9, std::string("x"), "suite", {{"name", "a"}}), kT0).empty());
  CHECK(plain->lines("[b] x\n") == "[b] x\n");
}

TEST_CASE("plain mode prints at most one progress line a second per job, the latest when due") {
  auto plain = make_plain_renderer();
  CHECK(plain->event(progress("a", 1, 10, "one"), kT0) == "a: 1/10 one\n");
  CHECK(plain->event(progress("b", 1, 5, ""), kT0 + 100ms) == "b: 1/5\n");
  CHECK(plain->event(progress("a", 2, 10, "two"), kT0 + 500ms).empty());
  CHECK(plain->event(progress("a", 3, 10, "three"), kT0 + 900ms).empty());
  CHECK(plain->tick(kT0 + 999ms).empty());
  CHECK(plain->tick(kT0 + 1000ms) == "a: 3/10 three\n");
  CHECK(plain->tick(kT0 + 3000ms).empty());
  CHECK(plain->event(progress("a", 3, 10, "three"), kT0 + 3100ms).empty());
  CHECK(plain->event(progress("a", 4, 10, "four"), kT0 + 3100ms) == "a: 4/10 four\n");
  CHECK(plain->event(progress("a", 5, 10, "five"), kT0 + 3200ms).empty());
  // A state change drops the progress it held back: the state line says more.
  CHECK(plain->event(state("a", "succeeded"), kT0 + 3300ms) == "a: succeeded\n");
  CHECK(plain->tick(kT0 + 9000ms).empty());
}

TEST_CASE("progress may come nested under \"progress\"; malformed events change nothing") {
  RunView view;
  CHECK(view.apply(event(1, std::string("a"), proto::kEventJobProgress,
                         {{"progress", {{"done", 2}, {"total", 3}, {"label", "x"}}}}))
            .change == RunView::Change::kJobProgress);
  REQUIRE(view.jobs().size() == 1);
  CHECK(view.jobs()[0].progress == proto::Progress{2, 3, "x"});
  CHECK(view.apply(event(2, std::string("a"), proto::kEventJobProgress, {{"done", "2"}})).change ==
        RunView::Change::kNone);
  CHECK(
      view.apply(event(3, std::string("a"), proto::kEventJobState, {{"state", "bogus"}})).change ==
      RunView::Change::kNone);
  CHECK(view.apply(event(4, std::nullopt, proto::kEventJobState, {{"state", "running"}})).change ==
        RunView::Change::kNone);
  CHECK(
      view.apply(event(5, std::nullopt, proto::kEventRunState, {{"state", "succeeded"}})).change ==
      RunView::Change::kRunState);
  CHECK(view.run_state() == proto::RunState::kSucceeded);
  CHECK(view.jobs().size() == 1);
}

TEST_CASE("log lines get the job's prefix, whole lines only, and long lines are split") {
  LinePrefixer prefixer("[test-arch] ");
  CHECK(prefixer.feed("hel").empty());
  CHECK(prefixer.feed("lo\nwor") == "[test-arch] hello\n");
  CHECK(prefixer.feed("ld\n\nx") == "[test-arch] world\n[test-arch] \n");
  CHECK(prefixer.flush() == "[test-arch] x\n");
  CHECK(prefixer.flush().empty());
  const std::string big(70 * 1024, 'y');
  const std::string out = prefixer.feed(big);
  CHECK(out == "[test-arch] " + std::string(64 * 1024, 'y') + "\n");
  CHECK(prefixer.flush() == "[test-arch] " + std::string(6 * 1024, 'y') + "\n");
}

TEST_CASE("durations read as hours, minutes and seconds") {
  CHECK(format_duration(0s) == "0s");
  CHECK(format_duration(41s) == "41s");
  CHECK(format_duration(401s) == "6m41s");
  CHECK(format_duration(3723s) == "1h02m03s");
  CHECK(format_duration(-5s) == "0s");
}

proto::JobSummary summary_job(std::string key, proto::JobState s, std::optional<std::int64_t> code,
                              std::uint32_t attempts) {
  proto::JobSummary j;
  j.run_id = "20261122-142030Z-3f2a";
  j.job = "test";
  j.key = std::move(key);
  j.state = s;
  j.exit_code = code;
  j.attempts = attempts;
  j.started_at = at("2026-11-22T14:20:30Z");
  j.finished_at = at("2026-11-22T14:27:11Z");
  return j;
}

TEST_CASE("suites count as passed, failed or xfail; only real failures are listed") {
  const auto counts = count_suites({{"10-a", proto::SuiteStatus::kPass, std::nullopt},
                                    {"20-b", proto::SuiteStatus::kFail, std::nullopt},
                                    {"30-c", proto::SuiteStatus::kFail, "xfail"},
                                    {"40-d", proto::SuiteStatus::kSkip, std::nullopt},
                                    {"50-e", proto::SuiteStatus::kFail, std::nullopt}});
  CHECK(counts.passed == 1);
  CHECK(counts.failed == 2);
  CHECK(counts.xfail == 1);
  CHECK(counts.skipped == 1);
  CHECK(counts.failed_names == std::vector<std::string>{"20-b", "50-e"});
}

TEST_CASE("the summary has a line per job and a last line with the run's outcome") {
  proto::RunSummary s;
  s.run_id = "20261122-142030Z-3f2a";
  s.name = "distro-matrix";
  s.state = proto::RunState::kFailed;
  auto arch = summary_job("test-arch", proto::JobState::kFailed, 1, 1);
  arch.suites = {{"20-enable-default", proto::SuiteStatus::kPass, std::nullopt},
                 {"30-disable-default", proto::SuiteStatus::kFail, std::nullopt},
                 {"40-flaky", proto::SuiteStatus::kFail, "xfail"}};
  auto manjaro = summary_job("test-manjaro", proto::JobState::kSucceeded, 0, 2);
  manjaro.started_at = at("2026-11-22T14:20:30Z");
  manjaro.finished_at = at("2026-11-22T14:21:11Z");
  auto cachy = summary_job("test-cachyos", proto::JobState::kFailed, std::nullopt, 1);
  cachy.finished_at.reset();
  cachy.error = "building odd-cachyos: dockerd: no space left on device";
  s.jobs = {arch, manjaro, cachy};
  s.counts = proto::count_jobs(s.jobs);
  CHECK(render_summary(s) ==
        "test-arch     failed     exit 1  1 attempt   6m41s  1 passed, 1 failed, 1 xfail  "
        "failed: 30-disable-default\n"
        "test-manjaro  succeeded  exit 0  2 attempts  41s    0 passed, 0 failed, 0 xfail\n"
        "test-cachyos  failed     exit -  1 attempt   -      0 passed, 0 failed, 0 xfail  "
        "error: building odd-cachyos: dockerd: no space left on device\n"
        "distro-matrix 20261122-142030Z-3f2a: failed (1 succeeded, 2 failed)\n");
}

TEST_CASE("a summary without jobs still names the run and its state") {
  proto::RunSummary s;
  s.run_id = "20261122-142030Z-3f2a";
  s.name = "empty";
  s.state = proto::RunState::kCancelled;
  CHECK(render_summary(s) == "empty 20261122-142030Z-3f2a: cancelled (no jobs)\n");
}

TEST_CASE("ls and status print aligned tables") {
  proto::RunInfo run;
  run.id = "20261122-142030Z-3f2a";
  run.name = "distro-matrix";
  run.state = proto::RunState::kRunning;
  run.created_at = at("2026-11-22T14:20:30Z");
  run.started_at = at("2026-11-22T14:20:31Z");
  run.caller = {1000, 1001, 4242};
  proto::RunInfo done = run;
  done.id = "20261121-090000Z-0001";
  done.name = "x";
  done.state = proto::RunState::kSucceeded;
  done.finished_at = at("2026-11-22T14:21:31Z");
  CHECK(render_run_list({run, done}) ==
        "ID                     NAME           STATE      CREATED               DURATION\n"
        "20261122-142030Z-3f2a  distro-matrix  running    2026-11-22T14:20:30Z  -\n"
        "20261121-090000Z-0001  x              succeeded  2026-11-22T14:20:30Z  1m00s\n");
  proto::JobStatus job;
  job.key = "test-arch";
  job.host = "local";
  job.state = proto::JobState::kRunning;
  job.attempt = 1;
  job.progress = {3, 10, "suites"};
  run.jobs = {job};
  CHECK(render_run(run) ==
        "run       20261122-142030Z-3f2a\n"
        "name      distro-matrix\n"
        "state     running\n"
        "created   2026-11-22T14:20:30Z\n"
        "started   2026-11-22T14:20:31Z\n"
        "finished  -\n"
        "duration  -\n"
        "caller    uid 1000, gid 1001, pid 4242\n"
        "\n"
        "JOB        STATE    ATTEMPT  EXIT  HOST   DURATION  PROGRESS\n"
        "test-arch  running  1        -     local  -         3/10 suites\n");
}

}  // namespace
}  // namespace odd::oddc
