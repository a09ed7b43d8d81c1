#include "daemon/scheduler.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "proto/line_protocol.hpp"
#include "proto/matrix.hpp"
#include "proto/spec.hpp"

namespace odd::daemon {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What one container attempt does in the fake.
struct Behavior {
  milliseconds runtime{1000};
  std::int64_t exit_code = 0;
  Status error;  // returned instead of an exit (after runtime)
  std::string output;
};

class FakeEngine final : public ContainerEngine {
 public:
  explicit FakeEngine(ManualClock& clock) : clock_(clock) {}

  asio::awaitable<Result<ImageResult>> build_image(
      const ImageRequest& request, std::function<void(const BuildProgress&)> on_progress) override {
    builds.push_back(request);
    on_progress({1, 2, "step 1"});
    const Status slept = co_await clock_.sleep_for(milliseconds(500));
    if (!slept.ok()) co_return slept;
    on_progress({2, 2, "step 2"});
    co_return ImageResult{request.repository + ":0123456789ab", "sha256:feed", false};
  }

  asio::awaitable<Result<ContainerExit>> run_container(const ContainerRequest& request,
                                                       ContainerCallbacks callbacks) override {
    requests.push_back(request);
    const std::string key = request.labels.at("odd.job");
    const std::size_t attempt = std::stoul(request.labels.at("odd.attempt"));
    Behavior behavior;
    if (auto it = script.find(key); it != script.end() && !it->second.empty()) {
      behavior = it->second[std::min(attempt, it->second.size()) - 1];
    }
    const std::string id = "id-" + request.name;
    callbacks.on_created(id);
    ++running;
    max_running = std::max(max_running, running);
    started_at[request.name] = clock_.now();
    if (!behavior.output.empty()) callbacks.on_output(OutputStream::kStdout, behavior.output);
    const Status slept = co_await clock_.sleep_for(behavior.runtime);
    --running;
    if (!slept.ok()) {
      cancelled_names.insert(request.name);
      co_return cancelled("container " + request.name + " cancelled");
    }
    if (!behavior.error.ok()) co_return behavior.error;
    co_return ContainerExit{id, "sha256:image", behavior.exit_code, false};
  }

  asio::awaitable<Status> stop_and_remove(const std::string& name, seconds) override {
    removed.push_back(name);
    co_return ok_status();
  }

  asio::awaitable<Status> stop(const std::string& name, seconds) override {
    stopped.push_back(name);
    co_return ok_status();
  }

  asio::awaitable<Result<std::vector<std::string>>> containers_with_label(
      const std::string&, const std::string&) override {
    co_return std::vector<std::string>{};
  }

  std::map<std::string, std::vector<Behavior>> script;  // by job key, per attempt
  std::vector<ContainerRequest> requests;
  std::vector<ImageRequest> builds;
  std::vector<std::string> removed;
  std::vector<std::string> stopped;
  std::set<std::string> cancelled_names;
  std::map<std::string, Clock::TimePoint> started_at;
  int running = 0;
  int max_running = 0;

 private:
  ManualClock& clock_;
};

// What one exec call does in the fake remote.
struct RemoteBehavior {
  milliseconds runtime{1000};
  int exit_code = 0;
  Status error;  // returned instead of an exit (after runtime)
  std::string output;
};

class FakeRemote final : public RemoteHost {
 public:
  explicit FakeRemote(ManualClock& clock) : clock_(clock) {}

  asio::awaitable<Result<RemoteExit>> exec(
      const RemoteCommand& command,
      std::function<void(OutputStream, std::string_view)> on_output) override {
    commands.push_back(command);
    RemoteBehavior behavior;
    if (!script.empty()) behavior = script[std::min(commands.size(), script.size()) - 1];
    if (!behavior.output.empty()) on_output(OutputStream::kStdout, behavior.output);
    const Status slept = co_await clock_.sleep_for(behavior.runtime);
    if (!slept.ok()) {
      ++cancelled_execs;
      co_return cancelled("exec on tester1 cancelled");
    }
    if (!behavior.error.ok()) co_return behavior.error;
    co_return RemoteExit{behavior.exit_code, ""};
  }

  asio::awaitable<Result<RemoteTransfer>> upload(const std::filesystem::path& source,
                                                 const std::string& dest,
                                                 std::optional<unsigned> mode) override {
    uploads.push_back({source.string(), dest, mode});
    co_return RemoteTransfer{3, 300};
  }

  asio::awaitable<Status> upload_content(std::string_view content, const std::string& dest,
                                         unsigned mode) override {
    contents.push_back({std::string(content), dest, mode});
    if (dest.find("denied") != std::string::npos) {
      co_return permission_denied("tester1: cannot write " + dest);
    }
    co_return ok_status();
  }

  asio::awaitable<Result<RemoteTransfer>> download(const std::string& source,
                                                   const std::filesystem::path& local_root,
                                                   const std::string& dest) override {
    downloads.push_back({source, local_root.string(), dest});
    co_return RemoteTransfer{2, 20};
  }

  RemoteHostHealth health() const override { return {"connected", 1, 0, ""}; }

  struct Upload {
    std::string source;  // a local path, or the content
    std::string dest;
    std::optional<unsigned> mode;
  };
  struct Download {
    std::string source;
    std::string root;
    std::string dest;
  };
  std::vector<RemoteBehavior> script;  // per exec call; the last one repeats
  std::vector<RemoteCommand> commands;
  std::vector<Upload> uploads;
  std::vector<Upload> contents;
  std::vector<Download> downloads;
  int cancelled_execs = 0;

 private:
  ManualClock& clock_;
};

class FakeLog final : public JobLog {
 public:
  FakeLog(std::string name, CaptureListener listener)
      : name_(std::move(name)), listener_(std::move(listener)) {}
  void write(OutputStream stream, std::string_view bytes) override {
    if (stream != OutputStream::kStdout) return;
    pending_.append(bytes);
    for (std::size_t end = pending_.find('\n'); end != std::string::npos;
         end = pending_.find('\n')) {
      const proto::LineInfo info = proto::classify_line(std::string_view(pending_).substr(0, end));
      if (info.progress && listener_.on_progress) listener_.on_progress(*info.progress);
      if (info.suite && listener_.on_suite) listener_.on_suite(*info.suite);
      if (info.output && listener_.on_output) {
        listener_.on_output(info.output->first, info.output->second);
      }
      pending_.erase(0, end + 1);
    }
  }
  Status close() override { return ok_status(); }
  std::filesystem::path stdout_path() const override { return "/logs/" + name_ + "-stdout"; }
  std::filesystem::path stderr_path() const override { return "/logs/" + name_ + "-stderr"; }

 private:
  std::string name_;
  CaptureListener listener_;
  std::string pending_;
};

struct RecordedEvent {
  std::optional<std::string> job;
  std::string type;
  proto::Json payload;
  bool durable = false;
};

class FakeObserver final : public RunObserver {
 public:
  void on_event(const std::optional<std::string>& job, std::string_view type, proto::Json payload,
                bool durable) override {
    events.push_back({job, std::string(type), std::move(payload), durable});
  }
  Result<std::unique_ptr<JobLog>> open_capture(const std::string&, const std::string& name,
                                               CaptureListener listener) override {
    return std::unique_ptr<JobLog>(std::make_unique<FakeLog>(name, std::move(listener)));
  }
  void on_container(const std::string& key, const std::string& name,
                    const std::string& id) override {
    cids[key + "/" + name] = id;
  }
  void on_job_final(const proto::JobSummary& summary) override { finals.push_back(summary); }
  Result<std::filesystem::path> download_dir(const std::string& key) override {
    return std::filesystem::path("/artifacts") / key;
  }

  std::vector<RecordedEvent> of_type(std::string_view type) const {
    std::vector<RecordedEvent> out;
    for (const auto& event : events) {
      if (event.type == type) out.push_back(event);
    }
    return out;
  }

  std::vector<RecordedEvent> events;
  std::map<std::string, std::string> cids;
  std::vector<proto::JobSummary> finals;
};

// One run over the fakes, driven to its end by advancing the manual clock to each next wake-up.
struct Harness {
  asio::io_context io;
  ManualClock clock;
  FakeEngine engine{clock};
  std::shared_ptr<FakeRemote> remote = std::make_shared<FakeRemote>(clock);
  FakeObserver observer;
  Semaphore global{8};
  SchedulerEnv env;
  std::vector<std::string> checked_paths;
  double random = 0.5;

  Harness() {
    env.clock = &clock;
    env.engine_for = [this](const std::string& host) -> ContainerEngine* {
      return host == "local" ? &engine : nullptr;
    };
    env.remote_for = [this](const std::string& host) -> std::shared_ptr<RemoteHost> {
      return host == "tester1" ? remote : nullptr;
    };
    env.global_slots = &global;
    env.check_path = [this](const std::filesystem::path& path, std::string_view) {
      checked_paths.push_back(path.string());
      if (path.string().rfind("/forbidden", 0) == 0) {
        return permission_denied(path.string() + " is outside allowed_roots");
      }
      return ok_status();
    };
    env.cache_dir = [](const std::string& name) -> Result<std::filesystem::path> {
      return std::filesystem::path("/state/cache") / name;
    };
    env.instance_id = "0123456789abcdef";
    env.default_network = "none";
    env.random = [this] { return random; };
  }

  std::unique_ptr<RunExecution> make(std::string_view yaml, proto::TemplateValues secrets = {}) {
    auto spec = proto::parse_spec(yaml);
    REQUIRE_MESSAGE(spec.has_value(), (spec ? "" : spec.error().message()));
    auto instances = proto::expand_jobs(*spec);
    REQUIRE(instances.has_value());
    RunPlan plan;
    plan.run_id = "20261122-142030Z-3f2a";
    plan.spec = *spec;
    plan.instances = *instances;
    for (const auto& [k, v] : spec->vars) plan.vars[k] = v;
    plan.secrets = std::move(secrets);
    plan.workdir = "/work/dir";
    return std::make_unique<RunExecution>(env, observer, std::move(plan), proto::Caller{1, 2, 3},
                                          proto::Timestamp{});
  }

  // Runs until the run is final; `at` is called once when the clock first reaches each of its
  // times, to act mid-run.
  void drive(RunExecution& run, std::map<milliseconds, std::function<void()>> at = {}) {
    bool done = false;
    asio::co_spawn(io, run.run(), [&done](std::exception_ptr e) {
      done = true;
      if (e) std::rethrow_exception(e);
    });
    const auto start = clock.now();
    for (int guard = 0; guard < 100000 && !done; ++guard) {
      io.poll();
      io.restart();
      if (done) break;
      auto wake = clock.next_wake();
      if (!at.empty() && start + at.begin()->first <= wake) {
        clock.advance(
            std::chrono::duration_cast<milliseconds>(start + at.begin()->first - clock.now()));
        io.poll();
        io.restart();
        at.begin()->second();
        at.erase(at.begin());
        continue;
      }
      REQUIRE_MESSAGE(clock.sleepers() > 0, "the run is stuck with nothing to wait for");
      clock.advance(std::chrono::duration_cast<milliseconds>(wake - clock.now()));
    }
    REQUIRE(done);
  }

  milliseconds elapsed() const {
    return std::chrono::duration_cast<milliseconds>(clock.now() -
                                                    Clock::TimePoint(std::chrono::hours(1)));
  }
};

const proto::JobStatus& job_of(const RunExecution& run, std::string_view key) {
  for (const auto& job : run.info().jobs) {
    if (job.key == key) return job;
  }
  FAIL("no job " << key);
  return run.info().jobs.front();
}

constexpr std::string_view kMatrixSpec = R"(
version: 1
name: matrix
concurrency: 2
jobs:
  test:
    matrix:
      distro: [arch, manjaro, cachyos, endeavouros]
    steps:
      - run: { image: busybox, cmd: ["true"] }
)";

}  // namespace

TEST_CASE("backoff doubles from the first delay, is capped at 60 s and jittered into [d/2, d]") {
  CHECK(backoff_delay(milliseconds(2000), 1, 1.0) == milliseconds(2000));
  CHECK(backoff_delay(milliseconds(2000), 2, 1.0) == milliseconds(4000));
  CHECK(backoff_delay(milliseconds(2000), 5, 1.0) == milliseconds(32000));
  CHECK(backoff_delay(milliseconds(2000), 6, 1.0) == milliseconds(60000));
  CHECK(backoff_delay(milliseconds(2000), 60, 1.0) == milliseconds(60000));
  CHECK(backoff_delay(milliseconds(2000), 1, 0.0) == milliseconds(1000));
  CHECK(backoff_delay(milliseconds(2000), 7, 0.0) == milliseconds(30000));
  CHECK(backoff_delay(milliseconds(90000), 1, 1.0) == milliseconds(60000));
}

TEST_CASE("a matrix runs every instance to success without exceeding the run's concurrency") {
  Harness h;
  auto run = h.make(kMatrixSpec);
  h.drive(*run);
  CHECK(run->info().state == proto::RunState::kSucceeded);
  CHECK(h.engine.max_running == 2);
  CHECK(h.engine.requests.size() == 4);
  CHECK(h.engine.removed.size() == 4);
  for (const auto& job : run->info().jobs) {
    CHECK(job.state == proto::JobState::kSucceeded);
    CHECK(job.attempt == 1);
    REQUIRE(job.exit_code.has_value());
    CHECK(*job.exit_code == 0);
  }
  CHECK(h.engine.requests[0].name == "odd-20261122-142030Z-3f2a-test-arch");
  CHECK(h.engine.requests[0].labels.at("odd.run") == "20261122-142030Z-3f2a");
  CHECK(h.engine.requests[0].labels.at("odd.daemon") == "0123456789abcdef");
  CHECK(h.engine.requests[0].network_mode == "none");
  CHECK(h.observer.cids.size() == 4);
  CHECK(h.observer.finals.size() == 4);
  // Two at a time for 1 s each: two waves.
  CHECK(h.elapsed() == milliseconds(2000));
}

TEST_CASE("the daemon's global cap bounds jobs across the run's own concurrency") {
  Harness h;
  Semaphore one(1);
  h.env.global_slots = &one;
  auto run = h.make(kMatrixSpec);
  h.drive(*run);
  CHECK(run->info().state == proto::RunState::kSucceeded);
  CHECK(h.engine.max_running == 1);
  CHECK(one.available() == 1);
}

TEST_CASE("retryable failures are retried with the capped backoff sequence, then fail") {
  Harness h;
  h.random = 1.0;
  h.engine.script["flaky"] = std::vector<Behavior>(
      9, Behavior{milliseconds(100), 0, unavailable("dockerd: connection reset"), ""});
  auto run = h.make(R"(
version: 1
name: retry
defaults: { retries: 7, backoff: 2s }
jobs:
  flaky:
    steps:
      - run: { image: busybox }
)");
  h.drive(*run);
  const auto& job = job_of(*run, "flaky");
  CHECK(job.state == proto::JobState::kFailed);
  CHECK(job.attempt == 8);
  std::vector<std::int64_t> delays;
  for (const auto& event : h.observer.of_type("attempt.retry")) {
    delays.push_back(event.payload["delay_ms"].get<std::int64_t>());
  }
  CHECK(delays == std::vector<std::int64_t>{2000, 4000, 8000, 16000, 32000, 60000, 60000});
  CHECK(h.engine.removed.size() == 8);
  CHECK(h.engine.requests[1].name == "odd-20261122-142030Z-3f2a-flaky-2");
  CHECK(run->info().state == proto::RunState::kFailed);
  REQUIRE(run->job_summaries()[0].error.has_value());
  CHECK(run->job_summaries()[0].error->find("connection reset") != std::string::npos);
}

TEST_CASE("a retried launch failure that then succeeds ends succeeded on the later attempt") {
  Harness h;
  h.engine.script["job"] = {{milliseconds(10), 0, unavailable("dockerd restarting"), ""},
                            {milliseconds(10), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: retry
jobs:
  job:
    retries: 3
    steps:
      - run: { image: busybox }
)");
  h.drive(*run);
  CHECK(job_of(*run, "job").state == proto::JobState::kSucceeded);
  CHECK(job_of(*run, "job").attempt == 2);
  CHECK(h.observer.of_type("attempt.retry").size() == 1);
}

TEST_CASE("failures that cannot succeed on a second try are not retried") {
  Harness h;
  h.engine.script["bad"] = {{milliseconds(10), 0, invalid_argument("no such image"), ""}};
  h.engine.script["red"] = {{milliseconds(10), 1, {}, ""}};
  auto run = h.make(R"(
version: 1
name: noretry
defaults: { retries: 5 }
jobs:
  bad:
    steps: [ { run: { image: busybox } } ]
  red:
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  CHECK(job_of(*run, "bad").attempt == 1);
  CHECK(job_of(*run, "bad").state == proto::JobState::kFailed);
  CHECK(job_of(*run, "red").attempt == 1);
  CHECK(job_of(*run, "red").state == proto::JobState::kFailed);
  REQUIRE(job_of(*run, "red").exit_code.has_value());
  CHECK(*job_of(*run, "red").exit_code == 1);
  CHECK(h.observer.of_type("attempt.retry").empty());
}

TEST_CASE("retry_on_exit retries a non-zero exit") {
  Harness h;
  h.engine.script["job"] = {{milliseconds(10), 3, {}, ""}, {milliseconds(10), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: exitretry
jobs:
  job:
    retries: 1
    steps: [ { run: { image: busybox, retry_on_exit: true } } ]
)");
  h.drive(*run);
  CHECK(job_of(*run, "job").state == proto::JobState::kSucceeded);
  CHECK(job_of(*run, "job").attempt == 2);
}

TEST_CASE("an attempt past its deadline is timed out, its container stopped and removed") {
  Harness h;
  h.engine.script["slow"] = {{milliseconds(600000), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: deadline
defaults: { timeout: 1m, retries: 3 }
jobs:
  slow:
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  const auto& job = job_of(*run, "slow");
  CHECK(job.state == proto::JobState::kTimedOut);
  CHECK(job.attempt == 1);
  CHECK(h.elapsed() == milliseconds(60000));
  CHECK(h.engine.cancelled_names.count("odd-20261122-142030Z-3f2a-slow") == 1);
  CHECK(h.engine.removed == std::vector<std::string>{"odd-20261122-142030Z-3f2a-slow"});
  CHECK(run->info().state == proto::RunState::kFailed);
  REQUIRE(run->job_summaries()[0].error.has_value());
  CHECK(run->job_summaries()[0].error->find("timeout of 1m") != std::string::npos);
}

TEST_CASE("a step's own timeout times the job out") {
  Harness h;
  h.engine.script["job"] = {{milliseconds(600000), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: steptimeout
jobs:
  job:
    steps: [ { run: { image: busybox, timeout: 90s } } ]
)");
  h.drive(*run);
  CHECK(job_of(*run, "job").state == proto::JobState::kTimedOut);
  CHECK(h.elapsed() == milliseconds(90000));
  CHECK(h.engine.removed.size() == 1);
}

TEST_CASE("fail-fast cancels running and pending jobs, and their cleanup still runs") {
  Harness h;
  h.engine.script["test-a"] = {{milliseconds(5000), 1, {}, ""}};
  h.engine.script["test-b"] = {{milliseconds(100000), 0, {}, ""}};
  h.engine.script["test-c"] = {{milliseconds(100000), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: ff
concurrency: 2
fail_fast: true
jobs:
  test:
    matrix: { x: [a, b, c] }
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  CHECK(run->info().state == proto::RunState::kFailed);
  CHECK(job_of(*run, "test-a").state == proto::JobState::kFailed);
  CHECK(job_of(*run, "test-b").state == proto::JobState::kCancelled);
  CHECK(job_of(*run, "test-c").state == proto::JobState::kCancelled);
  // test-c was never started: the failure came while it waited for a slot.
  CHECK(h.engine.requests.size() == 2);
  CHECK(h.engine.removed.size() == 2);
  CHECK(h.elapsed() == milliseconds(5000));
  CHECK(run->job_summaries()[1].error.value_or("").find("fail-fast") != std::string::npos);
}

TEST_CASE("without fail-fast the other jobs run to their end after a failure") {
  Harness h;
  h.engine.script["test-a"] = {{milliseconds(5000), 1, {}, ""}};
  h.engine.script["test-b"] = {{milliseconds(10000), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: noff
jobs:
  test:
    matrix: { x: [a, b] }
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  CHECK(run->info().state == proto::RunState::kFailed);
  CHECK(job_of(*run, "test-b").state == proto::JobState::kSucceeded);
}

TEST_CASE("cancel stops running jobs, cancels pending ones and ends the run cancelled") {
  Harness h;
  h.engine.script["test-a"] = {{milliseconds(100000), 0, {}, ""}};
  h.engine.script["test-b"] = {{milliseconds(100000), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: cancel
concurrency: 1
jobs:
  test:
    matrix: { x: [a, b] }
    steps: [ { run: { image: busybox } } ]
)");
  RunExecution* raw = run.get();
  h.drive(*run, {{milliseconds(3000), [raw] { raw->cancel("cancelled by uid 1000"); }}});
  CHECK(run->info().state == proto::RunState::kCancelled);
  CHECK(job_of(*run, "test-a").state == proto::JobState::kCancelled);
  CHECK(job_of(*run, "test-b").state == proto::JobState::kCancelled);
  CHECK(h.engine.removed == std::vector<std::string>{"odd-20261122-142030Z-3f2a-test-a"});
  CHECK(h.elapsed() == milliseconds(3000));
  CHECK(run->job_summaries()[0].error.value_or("") == "cancelled by uid 1000");
}

TEST_CASE("cancelling during a retry's backoff ends the job cancelled without another attempt") {
  Harness h;
  h.engine.script["job"] = {{milliseconds(10), 0, unavailable("down"), ""}};
  auto run = h.make(R"(
version: 1
name: cancelbackoff
defaults: { retries: 3, backoff: 30s }
jobs:
  job:
    steps: [ { run: { image: busybox } } ]
)");
  RunExecution* raw = run.get();
  h.drive(*run, {{milliseconds(1000), [raw] { raw->cancel("stop"); }}});
  CHECK(job_of(*run, "job").state == proto::JobState::kCancelled);
  CHECK(h.engine.requests.size() == 1);
}

TEST_CASE("a job waits for the jobs it needs and is skipped when one of them fails") {
  Harness h;
  h.engine.script["a"] = {{milliseconds(2000), 0, {}, ""}};
  h.engine.script["b"] = {{milliseconds(1000), 2, {}, ""}};
  auto run = h.make(R"(
version: 1
name: dag
concurrency: 4
jobs:
  a:
    steps: [ { run: { image: busybox } } ]
  b:
    steps: [ { run: { image: busybox } } ]
  c:
    needs: [a]
    steps: [ { run: { image: busybox } } ]
  d:
    needs: [b]
    steps: [ { run: { image: busybox } } ]
  e:
    needs: [d]
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  CHECK(job_of(*run, "c").state == proto::JobState::kSucceeded);
  CHECK(job_of(*run, "d").state == proto::JobState::kSkipped);
  CHECK(job_of(*run, "e").state == proto::JobState::kSkipped);
  const auto start = Clock::TimePoint(std::chrono::hours(1));
  CHECK(h.engine.started_at.at("odd-20261122-142030Z-3f2a-c") - start == milliseconds(2000));
  CHECK(run->job_summaries()[3].error.value_or("").find("needs b") != std::string::npos);
  CHECK(run->info().state == proto::RunState::kFailed);
}

TEST_CASE("outputs flow from set-output lines to later steps and to jobs that need them") {
  Harness h;
  h.engine.script["producer"] = {
      {milliseconds(10), 0, {}, "hello\n::set-output name=version::1.2.3\n"}};
  auto run = h.make(R"(
version: 1
name: outputs
vars: { flavour: mint }
jobs:
  producer:
    steps:
      - id: image
        build: { context: ./ctx, repository: "odd-${{ vars.flavour }}" }
      - id: probe
        run: { image: "${{ steps.image.outputs.image }}" }
  consumer:
    needs: [producer]
    steps:
      - run:
          image: busybox
          cmd: "echo ${{ needs.producer.outputs.version }} ${{ run.id }}"
          env: { WHERE: "${{ workdir }}" }
          mounts: ["${{ workdir }}/src:/src:ro", "cache:deps-${{ vars.flavour }}:/deps"]
          workdir: /src
)");
  h.drive(*run);
  CHECK(run->info().state == proto::RunState::kSucceeded);
  REQUIRE(h.engine.builds.size() == 1);
  CHECK(h.engine.builds[0].context_dir == "/work/dir/ctx");
  CHECK(h.engine.builds[0].repository == "odd-mint");
  REQUIRE(h.engine.requests.size() == 2);
  CHECK(h.engine.requests[0].image == "odd-mint:0123456789ab");
  const ContainerRequest& consumer = h.engine.requests[1];
  CHECK(consumer.cmd ==
        std::vector<std::string>{"/bin/sh", "-c", "echo 1.2.3 20261122-142030Z-3f2a"});
  CHECK(consumer.env == std::vector<std::string>{"WHERE=/work/dir"});
  CHECK(consumer.binds ==
        std::vector<std::string>{"/work/dir/src:/src:ro", "/state/cache/deps-mint:/deps"});
  CHECK(consumer.workdir == "/src");
  CHECK(job_of(*run, "producer").outputs.at("version") == "1.2.3");
  CHECK(run->job_summaries()[0].image.value_or("") == "odd-mint:0123456789ab");
}

TEST_CASE("progress lines and suite results reach the job, its events and its summary") {
  Harness h;
  h.engine.script["job"] = {{milliseconds(10),
                             1,
                             {},
                             "PB> 1/3 first\nPASS 10-boot\nPB> 3/3 last\n"
                             "FAIL 20-net [xfail]\nSKIP 30-gpu\n"}};
  auto run = h.make(R"(
version: 1
name: progress
jobs:
  job:
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  const auto& job = job_of(*run, "job");
  CHECK(job.progress.done == 3);
  CHECK(job.progress.total == 3);
  CHECK(job.progress.label == "last");
  const auto& suites = run->job_summaries()[0].suites;
  REQUIRE(suites.size() == 3);
  CHECK(suites[1].name == "20-net");
  CHECK(suites[1].status == proto::SuiteStatus::kFail);
  CHECK(suites[1].expect.value_or("") == "xfail");
  CHECK(h.observer.of_type("suite").size() == 3);
  CHECK(h.observer.of_type("job.progress").size() >= 2);
  CHECK(run->job_summaries()[0].log_paths.stdout_path.value_or("").find("-stdout") !=
        std::string::npos);
}

TEST_CASE("a job's run steps get their own container names, and every log pair is listed") {
  Harness h;
  h.engine.script["job"] = {{milliseconds(10), 0, unavailable("dockerd restarting"), ""},
                            {milliseconds(10), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: steps
jobs:
  job:
    retries: 1
    steps:
      - id: setup
        run: { image: busybox }
      - run: { image: busybox }
  single:
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  CHECK(job_of(*run, "job").state == proto::JobState::kSucceeded);
  const std::string prefix = "odd-" + run->info().id + "-";
  std::vector<std::string> names;
  for (const auto& request : h.engine.requests) names.push_back(request.name);
  // Attempt 1 fails at its first step; attempt 2 runs both.
  CHECK(std::count(names.begin(), names.end(), prefix + "job-setup") == 1);
  CHECK(std::count(names.begin(), names.end(), prefix + "job-setup-2") == 1);
  CHECK(std::count(names.begin(), names.end(), prefix + "job-step2-2") == 1);
  CHECK(std::count(names.begin(), names.end(), prefix + "single") == 1);

  const auto& logs = run->job_summaries()[0].logs;
  REQUIRE(logs.size() == 3);
  CHECK(logs[0].step == "setup");
  CHECK(logs[0].attempt == 1);
  CHECK(logs[0].name == prefix + "job-setup");
  CHECK(logs[1].attempt == 2);
  CHECK(logs[2].step == "run#2");
  CHECK(logs[2].attempt == 2);
  CHECK(logs[2].name == prefix + "job-step2-2");
  CHECK(logs[2].stdout_path.find("-stdout") != std::string::npos);
  CHECK(run->job_summaries()[0].log_paths.stdout_path.value_or("") == logs[2].stdout_path);
}

TEST_CASE("a bind mount outside the allowed roots fails the job naming the spec path") {
  Harness h;
  auto run = h.make(R"(
version: 1
name: roots
defaults: { retries: 3 }
jobs:
  job:
    steps: [ { run: { image: busybox, mounts: ["/forbidden/x:/x"] } } ]
)");
  h.drive(*run);
  CHECK(job_of(*run, "job").state == proto::JobState::kFailed);
  CHECK(job_of(*run, "job").attempt == 1);
  const std::string error = run->job_summaries()[0].error.value_or("");
  CHECK(error.find("jobs.job.steps[0].run.mounts[0]") != std::string::npos);
  CHECK(error.find("outside allowed_roots") != std::string::npos);
  CHECK(h.engine.requests.empty());
}

TEST_CASE("secret values never appear in errors or events") {
  Harness h;
  h.engine.script["job"] = {{milliseconds(10), 0, invalid_argument("bad token s3cr3t-value"), ""}};
  auto run = h.make(R"(
version: 1
name: secrets
jobs:
  job:
    steps: [ { run: { image: busybox, env: { TOKEN: "${{ secrets.TOKEN }}" } } } ]
)",
                    {{"TOKEN", "s3cr3t-value"}});
  h.drive(*run);
  CHECK(h.engine.requests.at(0).env == std::vector<std::string>{"TOKEN=s3cr3t-value"});
  const std::string error = run->job_summaries()[0].error.value_or("");
  CHECK(error.find("s3cr3t") == std::string::npos);
  CHECK(error.find("***") != std::string::npos);
  for (const auto& event : h.observer.events) {
    CHECK(event.payload.dump().find("s3cr3t") == std::string::npos);
  }
}

TEST_CASE("state changes and container intents are durable events, in order") {
  Harness h;
  auto run = h.make(R"(
version: 1
name: events
jobs:
  job:
    steps: [ { run: { image: busybox } } ]
)");
  h.drive(*run);
  std::vector<std::string> types;
  for (const auto& event : h.observer.events) {
    types.push_back(event.type);
    if (event.type == "run.state" || event.type == "job.state" ||
        event.type == "container.create") {
      CHECK(event.durable);
    }
  }
  CHECK(types == std::vector<std::string>{"run.state", "job.state", "step.start",
                                          "container.create", "step.end", "job.state",
                                          "run.state"});
  CHECK(h.observer.events.back().payload["state"] == "succeeded");
}

// ---- Remote hosts: exec, upload, download ----------------------------------------------------

TEST_CASE(
    "an exec step runs its templated command on the job's host, its output logged and its "
    "set-output lines and exit code becoming outputs") {
  Harness h;
  h.remote->script = {{milliseconds(2000), 0, {}, "booting\n::set-output name=version::2.0\n"}};
  auto run = h.make(R"(
version: 1
name: exec
vars: { dir: odd }
jobs:
  flux:
    host: tester1
    steps:
      - id: up
        exec: { cmd: "cd ${{ vars.dir }} && ./up.sh", env: { RUN: "${{ run.id }}" } }
  after:
    needs: [flux]
    steps:
      - run: { image: busybox, cmd: "echo ${{ needs.flux.outputs.version }}" }
)");
  h.drive(*run);
  CHECK(run->info().state == proto::RunState::kSucceeded);
  REQUIRE(h.remote->commands.size() == 1);
  CHECK(h.remote->commands[0].command == "cd odd && ./up.sh");
  CHECK(h.remote->commands[0].env ==
        std::map<std::string, std::string>{{"RUN", "20261122-142030Z-3f2a"}});
  const auto& flux = job_of(*run, "flux");
  CHECK(flux.outputs.at("version") == "2.0");
  CHECK(flux.outputs.at("exit_code") == "0");
  REQUIRE(flux.exit_code.has_value());
  CHECK(*flux.exit_code == 0);
  CHECK(run->job_summaries()[0].log_paths.stdout_path.value_or("") ==
        "/logs/odd-20261122-142030Z-3f2a-flux-up-stdout");
  REQUIRE(h.engine.requests.size() == 1);
  CHECK(h.engine.requests[0].cmd == std::vector<std::string>{"/bin/sh", "-c", "echo 2.0"});
}

TEST_CASE("an exec step's non-zero exit fails the job like a container's, without a retry") {
  Harness h;
  h.remote->script = {{milliseconds(10), 3, {}, ""}};
  auto run = h.make(R"(
version: 1
name: exec
jobs:
  flux:
    host: tester1
    retries: 2
    steps:
      - exec: { cmd: "pytest" }
      - exec: { cmd: "never" }
)");
  h.drive(*run);
  const auto& flux = job_of(*run, "flux");
  CHECK(flux.state == proto::JobState::kFailed);
  CHECK(flux.attempt == 1);
  REQUIRE(flux.exit_code.has_value());
  CHECK(*flux.exit_code == 3);
  CHECK(h.remote->commands.size() == 1);
  CHECK(run->job_summaries()[0].error.value_or("") ==
        "step exec#1: the command on host tester1 exited with code 3");
  CHECK(run->info().state == proto::RunState::kFailed);
}

TEST_CASE("an exec step past its timeout is cancelled on the host and times the job out") {
  Harness h;
  h.remote->script = {{milliseconds(600000), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: exec
jobs:
  flux:
    host: tester1
    steps:
      - exec: { cmd: "sleep 600", timeout: 30s }
)");
  h.drive(*run);
  CHECK(job_of(*run, "flux").state == proto::JobState::kTimedOut);
  CHECK(h.remote->cancelled_execs == 1);
  CHECK(h.elapsed() == milliseconds(30000));
  CHECK(run->job_summaries()[0].error.value_or("").find("timeout of 30s") != std::string::npos);
}

TEST_CASE("an exec step whose host is unreachable is retried after the backoff, then succeeds") {
  Harness h;
  h.random = 1.0;
  h.remote->script = {{milliseconds(100), 0,
                       unavailable("tester1 (10.0.0.85:22): connect: "
                                   "connection refused"),
                       ""},
                      {milliseconds(100), 0, {}, ""}};
  auto run = h.make(R"(
version: 1
name: exec
jobs:
  flux:
    host: tester1
    retries: 2
    backoff: 5s
    steps:
      - exec: { cmd: "true" }
)");
  h.drive(*run);
  const auto& flux = job_of(*run, "flux");
  CHECK(flux.state == proto::JobState::kSucceeded);
  CHECK(flux.attempt == 2);
  CHECK(h.remote->commands.size() == 2);
  const auto retries = h.observer.of_type("attempt.retry");
  REQUIRE(retries.size() == 1);
  CHECK(retries[0].payload["delay_ms"] == 5000);
  CHECK(retries[0].payload["error"].get<std::string>().find("connection refused") !=
        std::string::npos);
  CHECK(h.elapsed() == milliseconds(5200));
}

TEST_CASE(
    "an upload writes rendered content with mode 0600 by default, sends a workdir tree "
    "keeping its modes, and never shows the secret in events or errors") {
  Harness h;
  auto run = h.make(R"(
version: 1
name: upload
jobs:
  flux:
    host: tester1
    steps:
      - upload: { content: "TOKEN=${{ secrets.TOKEN }}\n", dest: "odd/.env" }
      - upload: { content: "x", dest: "odd/x", mode: "0644" }
      - id: suites
        upload: { src: ./suites, dest: odd/suites }
  leak:
    host: tester1
    steps:
      - upload: { content: "y", dest: "denied/${{ secrets.TOKEN }}" }
)",
                    {{"TOKEN", "s3cr3t-value"}});
  h.drive(*run);
  CHECK(job_of(*run, "flux").state == proto::JobState::kSucceeded);
  REQUIRE(h.remote->contents.size() == 3);
  CHECK(h.remote->contents[0].source == "TOKEN=s3cr3t-value\n");
  CHECK(h.remote->contents[0].dest == "odd/.env");
  CHECK(h.remote->contents[0].mode == 0600u);
  CHECK(h.remote->contents[1].mode == 0644u);
  REQUIRE(h.remote->uploads.size() == 1);
  CHECK(h.remote->uploads[0].source == "/work/dir/suites");
  CHECK(h.remote->uploads[0].dest == "odd/suites");
  CHECK_FALSE(h.remote->uploads[0].mode.has_value());
  CHECK(h.checked_paths == std::vector<std::string>{"/work/dir/suites"});
  CHECK(job_of(*run, "flux").outputs.at("files") == "3");

  CHECK(job_of(*run, "leak").state == proto::JobState::kFailed);
  const std::string error = run->job_summaries()[1].error.value_or("");
  CHECK(error.find("cannot write denied/***") != std::string::npos);
  bool saw_failed_step = false;
  for (const auto& event : h.observer.events) {
    CHECK(event.payload.dump().find("s3cr3t") == std::string::npos);
    if (event.type == "step.end" && event.payload["status"] == "failed") saw_failed_step = true;
  }
  CHECK(saw_failed_step);
}

TEST_CASE("an upload source outside the allowed roots fails the job naming src") {
  Harness h;
  auto run = h.make(R"(
version: 1
name: upload
jobs:
  flux:
    host: tester1
    steps:
      - upload: { src: /forbidden/suites, dest: odd/suites }
)");
  h.drive(*run);
  CHECK(job_of(*run, "flux").state == proto::JobState::kFailed);
  const std::string error = run->job_summaries()[0].error.value_or("");
  CHECK(error.find("jobs.flux.steps[0].upload.src") != std::string::npos);
  CHECK(error.find("outside allowed_roots") != std::string::npos);
  CHECK(h.remote->uploads.empty());
}

TEST_CASE(
    "a download lands under the job's key in the run's artifacts, and a templated dest "
    "that leaves them is refused") {
  Harness h;
  auto run = h.make(R"(
version: 1
name: download
vars: { out: raw-results, escape: "../../etc" }
jobs:
  flux:
    host: tester1
    steps:
      - id: results
        download: { src: odd/raw-results, dest: "${{ vars.out }}" }
  bad:
    host: tester1
    steps:
      - download: { src: odd/x, dest: "${{ vars.escape }}" }
)");
  h.drive(*run);
  CHECK(job_of(*run, "flux").state == proto::JobState::kSucceeded);
  REQUIRE(h.remote->downloads.size() == 1);
  CHECK(h.remote->downloads[0].source == "odd/raw-results");
  CHECK(h.remote->downloads[0].root == "/artifacts/flux");
  CHECK(h.remote->downloads[0].dest == "raw-results");
  CHECK(job_of(*run, "flux").outputs.at("path") == "flux/raw-results");
  CHECK(job_of(*run, "flux").outputs.at("files") == "2");

  CHECK(job_of(*run, "bad").state == proto::JobState::kFailed);
  CHECK(run->job_summaries()[1].error.value_or("") ==
        "jobs.bad.steps[0].download.dest: expected a relative path inside the run's artifacts, "
        "got \"../../etc\"");
}

TEST_CASE(
    "remote steps on a host the daemon does not know, and containers on a host without "
    "remote docker, fail with an error naming the host") {
  Harness h;
  auto run = h.make(R"(
version: 1
name: hosts
defaults: { retries: 2 }
jobs:
  gone:
    host: tester9
    steps:
      - exec: { cmd: "true" }
  nodocker:
    host: tester1
    steps:
      - run: { image: busybox }
)");
  h.drive(*run);
  CHECK(job_of(*run, "gone").state == proto::JobState::kFailed);
  CHECK(job_of(*run, "gone").attempt == 1);
  CHECK(run->job_summaries()[0].error.value_or("") ==
        "jobs.gone.steps[0].exec: host \"tester9\" is not among the daemon's configured remote "
        "hosts (was it removed from the config by a reload?)");
  CHECK(job_of(*run, "nodocker").state == proto::JobState::kFailed);
  CHECK(run->job_summaries()[1].error.value_or("") == "host tester1: remote docker not available");
  CHECK(h.remote->commands.empty());
  CHECK(h.engine.requests.empty());
}

}  // namespace odd::daemon
