#include "daemon/run_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>

#include "daemon/artifacts.hpp"
#include "daemon/log_capture.hpp"
#include "engine/docker_client.hpp"
#include "proto/matrix.hpp"
#include "proto/spec.hpp"

namespace odd::daemon {

using namespace asio::experimental::awaitable_operators;

namespace {

proto::Timestamp now_seconds(const Clock& clock) {
  return std::chrono::floor<std::chrono::seconds>(clock.wall_now());
}

// The scheduler's view of a LogCapture.
class CaptureLog final : public JobLog {
 public:
  explicit CaptureLog(std::unique_ptr<LogCapture> capture) : capture_(std::move(capture)) {}
  void write(OutputStream stream, std::string_view bytes) override {
    capture_->write(stream, bytes);
  }
  Status close() override { return capture_->close(); }
  std::filesystem::path stdout_path() const override { return capture_->stdout_path(); }
  std::filesystem::path stderr_path() const override { return capture_->stderr_path(); }

 private:
  std::unique_ptr<LogCapture> capture_;
};

// Events already read from the store, for runs that are not active.
class StoredEventCursor final : public EventCursor {
 public:
  explicit StoredEventCursor(std::vector<proto::Event> events) : events_(std::move(events)) {}
  asio::awaitable<Result<std::optional<proto::Event>>> next() override {
    if (index_ >= events_.size()) co_return std::optional<proto::Event>();
    co_return std::optional<proto::Event>(events_[index_++]);
  }

 private:
  std::vector<proto::Event> events_;
  std::size_t index_ = 0;
};

// The hub key a job's log writer notifies when it opens a log pair and closes when an attempt
// ends: the job's directory, which no log file is named after.
std::filesystem::path job_log_marker(const std::filesystem::path& run_dir, const std::string& key) {
  return run_dir / "jobs" / key;
}

// The log pairs attempt `attempt` of a job opened, in order.
std::vector<std::pair<std::filesystem::path, std::filesystem::path>> attempt_logs(
    const proto::JobSummary& summary, std::uint32_t attempt) {
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> pairs;
  for (const auto& log : summary.logs) {
    if (log.attempt == attempt) pairs.emplace_back(log.stdout_path, log.stderr_path);
  }
  return pairs;
}

std::string join_keys(const std::vector<proto::JobStatus>& jobs) {
  std::string keys;
  for (const auto& job : jobs) {
    if (!keys.empty()) keys += ", ";
    keys += job.key;
  }
  return keys;
}

}  // namespace

// One run in flight: its execution, its event log and the followers of both.
class RunManager::ActiveRun final : public RunObserver {
 public:
  ActiveRun(RunManager& manager, RunRecord record, std::unique_ptr<EventLog> event_log)
      : manager_(manager), record_(std::move(record)), event_log_(std::move(event_log)) {}

  void start(RunPlan plan, proto::Caller caller) {
    execution_ = std::make_unique<RunExecution>(manager_.env_, *this, std::move(plan), caller,
                                                record_.info.created_at);
  }

  void on_event(const std::optional<std::string>& job, std::string_view type, proto::Json payload,
                bool durable) override {
    if (type == proto::kEventJobState && job) {
      const auto state = payload.find("state");
      if (state != payload.end() && *state == proto::to_string(proto::JobState::kRunning)) {
        manager_.hub_.open(log_marker(*job));
      } else {
        manager_.hub_.close(log_marker(*job));
      }
    }
    proto::Event event;
    event.seq = events_.size() + 1;
    event.ts = now_seconds(*manager_.env_.clock);
    event.run = record_.info.id;
    event.job = job;
    event.type = std::string(type);
    event.payload = std::move(payload);
    if (Status appended = event_log_->append(event); !appended.ok()) {
      spdlog::error("run {}: {}", record_.info.id, appended.message());
    }
    if (durable) {
      if (Status synced = event_log_->sync(); !synced.ok()) {
        spdlog::error("run {}: {}", record_.info.id, synced.message());
      }
    }
    events_.push_back(std::move(event));
    if (type == proto::kEventRunState || type == proto::kEventJobState) persist();
    changed_.notify_all();
  }

  Result<std::unique_ptr<JobLog>> open_capture(const std::string& key,
                                               const std::string& container_name,
                                               CaptureListener listener) override {
    auto dir = manager_.store_.job_dir(record_.info.id, key);
    if (!dir) return dir.error();
    CaptureOptions options;
    options.dir = *dir;
    options.container_name = container_name;
    options.stamp = proto::format_compact_utc(now_seconds(*manager_.env_.clock));
    for (const auto& [name, value] : secrets_) options.secrets.push_back(value);
    auto capture = LogCapture::open(manager_.executor_, std::move(options), std::move(listener),
                                    &manager_.hub_);
    if (!capture) return capture.error();
    // The scheduler adds the pair to the job's summary before a woken follower runs again.
    manager_.hub_.notify(log_marker(key));
    return std::unique_ptr<JobLog>(std::make_unique<CaptureLog>(std::move(*capture)));
  }

  Result<std::filesystem::path> download_dir(const std::string& key) override {
    auto files = manager_.store_.artifacts_dir(record_.info.id);
    if (!files) return files.error();
    // Job keys are sanitised names; this only guards the path against a broken invariant.
    if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos) {
      return internal_error("job key \"" + key + "\" cannot name a directory");
    }
    const std::filesystem::path dir = *files / key;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return internal_error("creating " + dir.string() + ": " + ec.message());
    return dir;
  }

  void on_container(const std::string& key, const std::string& container_name,
                    const std::string& container_id) override {
    if (Status written =
            manager_.store_.write_cid(record_.info.id, key, container_name, container_id);
        !written.ok()) {
      spdlog::error("run {}: {}", record_.info.id, written.message());
    }
  }

  void on_job_final(const proto::JobSummary& summary) override {
    if (Status written = manager_.store_.write_job_summary(record_.info.id, summary);
        !written.ok()) {
      spdlog::error("run {}: {}", record_.info.id, written.message());
    }
  }

  // The run is final: the aggregate summary and the last run.json are written.
  void finish() {
    if (Status written = manager_.store_.write_run_summary(record_.info.id, execution_->summary());
        !written.ok()) {
      spdlog::error("run {}: {}", record_.info.id, written.message());
    }
    if (!execution_->error().empty()) record_.error = execution_->error();
    persist();
    if (Status synced = event_log_->sync(); !synced.ok()) {
      spdlog::error("run {}: {}", record_.info.id, synced.message());
    }
    finished_ = true;
    changed_.notify_all();
  }

  void persist() {
    record_.info = execution_->info();
    if (Status written = manager_.store_.write_run(record_); !written.ok()) {
      spdlog::error("run {}: {}", record_.info.id, written.message());
    }
  }

  const std::string& id() const { return record_.info.id; }
  RunExecution& execution() { return *execution_; }
  std::filesystem::path log_marker(const std::string& key) const {
    auto dir = manager_.store_.run_dir(record_.info.id);
    return dir ? job_log_marker(*dir, key) : std::filesystem::path();
  }
  const std::vector<proto::Event>& events() const { return events_; }
  Notifier& changed() { return changed_; }
  bool finished() const { return finished_; }
  bool detached() const { return record_.detach; }
  void set_secrets(proto::TemplateValues secrets) { secrets_ = std::move(secrets); }

 private:
  RunManager& manager_;
  RunRecord record_;
  std::unique_ptr<EventLog> event_log_;
  std::unique_ptr<RunExecution> execution_;
  std::vector<proto::Event> events_;
  Notifier changed_;
  bool finished_ = false;
  proto::TemplateValues secrets_;
};

// Events of an active run: everything stored so far, then each new one as it happens.
class RunManager::LiveEventCursor final : public EventCursor {
 public:
  LiveEventCursor(std::shared_ptr<ActiveRun> run, std::uint64_t since, bool follow)
      : run_(std::move(run)), index_(since), follow_(follow) {}

  asio::awaitable<Result<std::optional<proto::Event>>> next() override {
    for (;;) {
      if (index_ < run_->events().size()) {
        co_return std::optional<proto::Event>(run_->events()[index_++]);
      }
      if (!follow_ || run_->finished()) co_return std::optional<proto::Event>();
      const Status woken = co_await run_->changed().wait();
      if (!woken.ok()) co_return woken;
    }
  }

 private:
  std::shared_ptr<ActiveRun> run_;
  std::size_t index_;
  bool follow_;
};

RunManager::RunManager(asio::any_io_executor executor, RunStore& store, LogHub& hub,
                       SchedulerEnv env, engine::DockerClient* docker, RunManagerOptions options)
    : executor_(std::move(executor)),
      store_(store),
      hub_(hub),
      env_(std::move(env)),
      docker_(docker),
      options_(std::move(options)),
      global_slots_(std::max<std::size_t>(options_.max_concurrency, 1)) {
  env_.global_slots = &global_slots_;
}

RunManager::~RunManager() = default;

std::shared_ptr<RunManager::ActiveRun> RunManager::find_active(const std::string& run_id) const {
  auto it = active_.find(run_id);
  return it == active_.end() ? nullptr : it->second;
}

Result<RunPlan> RunManager::plan(const proto::SubmitRequest& request, std::string run_id) const {
  Result<proto::RunSpec> spec =
      request.spec ? proto::parse_spec_json(*request.spec) : proto::parse_spec(*request.spec_text);
  if (!spec) return spec.error();

  for (const proto::JobSpec& job : spec->jobs) {
    const std::string job_path = proto::spec_path_key("jobs", job.name);
    const HostConfig* host = job.host == "local" || options_.hosts == nullptr
                                 ? nullptr
                                 : options_.hosts->config(job.host);
    if (job.host != "local" && host == nullptr) {
      std::string known = "local";
      if (options_.hosts != nullptr) {
        for (const std::string& name : options_.hosts->names()) known += ", " + name;
      }
      return invalid_argument(proto::spec_path_key(job_path, "host") + ": unknown host \"" +
                              job.host + "\" (the daemon knows: " + known + ")");
    }
    for (std::size_t i = 0; i < job.steps.size(); ++i) {
      const proto::StepKind kind = job.steps[i].kind();
      const std::string step_path =
          proto::spec_path_key(proto::spec_path_index(proto::spec_path_key(job_path, "steps"), i),
                               proto::step_kind_name(kind));
      switch (kind) {
        case proto::StepKind::kBuild:
        case proto::StepKind::kRun:
          if (host != nullptr && !host->docker) {
            return invalid_argument(proto::spec_path_key(job_path, "host") + ": host \"" +
                                    job.host +
                                    "\" has no `docker: true` in the daemon's config, so " +
                                    step_path + " cannot run there");
          }
          break;
        case proto::StepKind::kExec:
        case proto::StepKind::kUpload:
        case proto::StepKind::kDownload:
          if (host == nullptr) {
            return invalid_argument(step_path + ": needs a remote host (set jobs." + job.name +
                                    ".host to one of the daemon's hosts); host \"local\" runs "
                                    "build and run steps only");
          }
          break;
        default:
          return invalid_argument(step_path +
                                  ": not supported yet (http steps are not available "
                                  "yet)");
      }
    }
  }

  std::set<std::string, std::less<>> var_names;
  for (const auto& [key, value] : spec->vars) var_names.insert(key);
  std::set<std::string, std::less<>> secret_names;
  for (const auto& [key, value] : options_.secrets) secret_names.insert(key);
  for (const auto& [key, value] : request.secrets) secret_names.insert(key);
  if (Status checked = proto::check_spec_references(*spec, var_names, secret_names);
      !checked.ok()) {
    return checked;
  }

  RunPlan plan;
  plan.run_id = std::move(run_id);
  for (const auto& [key, value] : spec->vars) plan.vars[key] = value;
  for (const auto& [key, value] : request.vars) {
    if (spec->vars.find(key) == spec->vars.end()) {
      std::string declared;
      for (const auto& [name, unused] : spec->vars)
        declared += (declared.empty() ? "" : ", ") + name;
      return invalid_argument(proto::spec_path_key("vars", key) +
                              ": not declared in the spec's vars (declared: " +
                              (declared.empty() ? std::string("none") : declared) + ")");
    }
    plan.vars[key] = value;
  }
  plan.secrets = options_.secrets;
  for (const auto& [key, value] : request.secrets) plan.secrets[key] = value;
  auto instances = proto::expand_jobs(*spec);
  if (!instances) return instances.error();
  plan.instances = std::move(*instances);
  plan.spec = std::move(*spec);
  plan.workdir = request.workdir;
  return plan;
}

asio::awaitable<Result<Submitted>> RunManager::submit(proto::SubmitRequest request,
                                                      proto::Caller caller) {
  if (stopping_) co_return unavailable("the daemon is stopping; submit the run again later");
  std::random_device entropy;
  std::string run_id;
  for (int tries = 0; tries < 100; ++tries) {
    run_id =
        proto::make_run_id(env_.clock->wall_now(), static_cast<std::uint16_t>(entropy() & 0xffff));
    auto dir = store_.run_dir(run_id);
    std::error_code ec;
    if (dir && !active_.count(run_id) && !std::filesystem::exists(*dir, ec) && !ec) break;
  }
  auto planned = plan(request, run_id);
  if (!planned) co_return planned.error();

  RunRecord record;
  record.info.id = run_id;
  record.info.name = planned->spec.name;
  record.info.state = proto::RunState::kQueued;
  record.info.created_at = now_seconds(*env_.clock);
  record.info.caller = caller;
  if (request.spec) record.spec = *request.spec;
  if (request.spec_text) record.spec_text = *request.spec_text;
  record.vars = request.vars;
  record.workdir = request.workdir;
  record.detach = request.detach;
  if (Status created = store_.create_run(record); !created.ok()) co_return created;
  auto event_log = store_.open_event_log(run_id);
  if (!event_log) co_return event_log.error();

  auto run = std::make_shared<ActiveRun>(*this, std::move(record), std::move(*event_log));
  run->set_secrets(planned->secrets);
  run->start(std::move(*planned), caller);
  active_[run_id] = run;
  spdlog::info("run {} submitted by uid {} pid {}", run_id, caller.uid, caller.pid);

  Submitted submitted;
  submitted.run_id = run_id;
  if (!request.detach) submitted.events = std::make_unique<LiveEventCursor>(run, 0, true);
  asio::co_spawn(executor_, drive(run), [run_id](std::exception_ptr error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      spdlog::error("run {}: internal error: {}", run_id, e.what());
    }
  });
  co_return submitted;
}

asio::awaitable<void> RunManager::drive(std::shared_ptr<ActiveRun> run) {
  co_await run->execution().run();
  run->finish();
  active_.erase(run->id());
  spdlog::info("run {} {}", run->id(), proto::to_string(run->execution().info().state));
  run_ended_.notify_all();
  std::set<std::string> keep;
  for (const auto& [id, unused] : active_) keep.insert(id);
  auto pruned = store_.prune(options_.retention, std::chrono::system_clock::now(), keep);
  if (!pruned) spdlog::warn("pruning old runs: {}", pruned.error().message());
}

void RunManager::submitter_gone(const std::string& run_id, const std::string& reason) {
  if (auto run = find_active(run_id); run && !run->detached()) run->execution().cancel(reason);
}

asio::awaitable<void> RunManager::shutdown() {
  stopping_ = true;
  for (auto& [id, run] : active_) run->execution().cancel("daemon stopping");
  const auto deadline = env_.clock->now() + options_.shutdown_grace;
  while (!active_.empty() && env_.clock->now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - env_.clock->now());
    co_await (run_ended_.wait() || env_.clock->sleep_for(left));
  }
  if (!active_.empty()) {
    spdlog::error("{} run(s) still cleaning up after the shutdown grace period", active_.size());
  }
}

asio::awaitable<void> RunManager::reconcile() {
  auto ids = store_.list_run_ids();
  if (!ids) {
    spdlog::error("reading the state dir: {}", ids.error().message());
    co_return;
  }
  for (const std::string& id : *ids) {
    auto record = store_.load_run(id);
    if (!record) {
      spdlog::warn("run {}: {}", id, record.error().message());
      continue;
    }
    if (proto::is_final(record->info.state)) continue;
    const auto now = now_seconds(*env_.clock);
    record->info.state = proto::RunState::kFailed;
    record->info.finished_at = now;
    if (!record->info.started_at) record->info.started_at = now;
    for (auto& job : record->info.jobs) {
      if (!proto::is_final(job.state)) {
        job.state = proto::JobState::kFailed;
        job.finished_at = now;
      }
    }
    record->error = "the daemon stopped while the run was in progress";
    if (Status written = store_.write_run(*record); !written.ok()) {
      spdlog::error("run {}: {}", id, written.message());
    }
    spdlog::warn("run {}: failed: {}", id, *record->error);
  }
  if (ContainerEngine* local = env_.engine_for("local"); local != nullptr) {
    co_await remove_leftovers(*local, "local");
  }
  if (options_.hosts == nullptr) co_return;
  for (const std::string& name : options_.hosts->names()) {
    // Held: a reload may drop the host from the registry meanwhile.
    std::shared_ptr<RemoteHost> host = options_.hosts->find(name);
    if (host == nullptr) continue;
    co_await host->remove_left_behind();
    if (host->container_engine() == nullptr) continue;
    co_await remove_leftovers(*host->container_engine(), "host " + name);
  }
}

asio::awaitable<void> RunManager::remove_leftovers(ContainerEngine& engine, std::string where) {
  auto leftovers = co_await engine.containers_with_label("odd.daemon", env_.instance_id);
  if (!leftovers) {
    spdlog::warn("looking for containers left behind on {}: {}", where,
                 leftovers.error().message());
    co_return;
  }
  for (const std::string& name : *leftovers) {
    // A run submitted since start-up may already have containers (named odd-<run-id>-...).
    const bool claimed = std::any_of(active_.begin(), active_.end(), [&name](const auto& entry) {
      return name.rfind("odd-" + entry.first + "-", 0) == 0;
    });
    if (claimed) continue;
    spdlog::info("removing container {} on {}, left behind by an earlier daemon", name, where);
    const Status removed = co_await engine.stop_and_remove(name, env_.stop_grace);
    if (!removed.ok()) spdlog::warn("removing {} on {}: {}", name, where, removed.message());
  }
}

asio::awaitable<Result<proto::Json>> RunManager::version() {
  proto::Json body = {{"version", options_.daemon_version}, {"api_version", "1"}};
  body["docker"] = nullptr;
  if (docker_ != nullptr) {
    auto info = co_await docker_->version();
    if (info) {
      body["docker"] = {{"version", info->version}, {"api_version", info->api_version}};
    }
  }
  co_return body;
}

asio::awaitable<Result<proto::Json>> RunManager::health() {
  proto::Json docker = {{"reachable", false}, {"error", nullptr}};
  if (docker_ != nullptr) {
    const Status pinged = co_await docker_->ping();
    docker["reachable"] = pinged.ok();
    if (!pinged.ok()) docker["error"] = pinged.message();
  }
  proto::Json hosts = proto::Json::object();
  if (options_.hosts != nullptr) {
    for (const std::string& name : options_.hosts->names()) {
      const HostConfig* config = options_.hosts->config(name);
      const std::shared_ptr<RemoteHost> host = options_.hosts->find(name);
      const RemoteHostHealth state = host->health();
      proto::Json entry = {{"address", config->address + ":" + std::to_string(config->port)},
                           {"state", state.state},
                           {"sessions", state.sessions},
                           {"in_use", state.in_use},
                           {"error", nullptr}};
      if (!state.error.empty()) entry["error"] = state.error;
      hosts[name] = std::move(entry);
    }
  }
  co_return proto::Json{{"docker", docker}, {"hosts", hosts}, {"active_runs", active_.size()}};
}

Result<std::vector<proto::RunInfo>> RunManager::list_runs(std::optional<proto::RunState> state,
                                                          std::size_t limit) {
  auto ids = store_.list_run_ids();
  if (!ids) return ids.error();
  std::vector<proto::RunInfo> runs;
  for (const std::string& id : *ids) {
    if (runs.size() >= limit) break;
    auto info = get_run(id);
    if (!info) continue;
    if (state && info->state != *state) continue;
    info->jobs.clear();
    runs.push_back(std::move(*info));
  }
  return runs;
}

Result<proto::RunInfo> RunManager::get_run(const std::string& run_id) {
  if (auto run = find_active(run_id)) return run->execution().info();
  auto record = store_.load_run(run_id);
  if (!record) {
    if (record.error().code() == Code::kNotFound) return not_found("no run " + run_id);
    return record.error();
  }
  return std::move(record->info);
}

Status RunManager::cancel_run(const std::string& run_id) {
  if (auto run = find_active(run_id)) {
    run->execution().cancel("cancelled by request");
    return ok_status();
  }
  auto info = get_run(run_id);
  if (!info) return info.error();
  return ok_status();
}

Result<proto::RunSummary> RunManager::summary(const std::string& run_id) {
  if (auto run = find_active(run_id)) return run->execution().summary();
  auto info = get_run(run_id);
  if (!info) return info.error();
  return store_.load_run_summary(run_id);
}

Result<std::unique_ptr<EventCursor>> RunManager::events(const std::string& run_id,
                                                        std::uint64_t since, bool follow) {
  if (auto run = find_active(run_id)) {
    return std::unique_ptr<EventCursor>(std::make_unique<LiveEventCursor>(run, since, follow));
  }
  auto info = get_run(run_id);
  if (!info) return info.error();
  auto stored = store_.read_events(run_id, since + 1);
  if (!stored) return stored.error();
  return std::unique_ptr<EventCursor>(std::make_unique<StoredEventCursor>(std::move(*stored)));
}

Result<std::unique_ptr<ByteCursor>> RunManager::logs(const std::string& run_id,
                                                     const std::string& job_key, LogSelect select,
                                                     bool follow) {
  auto run_dir = store_.run_dir(run_id);
  if (!run_dir) return run_dir.error();
  std::filesystem::path marker = job_log_marker(*run_dir, job_key);
  auto no_logs = [&](std::uint32_t attempt) {
    return not_found("job " + job_key + " of run " + run_id + " has no logs" +
                     (attempt > 1 ? " in attempt " + std::to_string(attempt) : std::string()) +
                     " yet");
  };
  if (auto run = find_active(run_id)) {
    const auto& jobs = run->execution().info().jobs;
    const auto it =
        std::find_if(jobs.begin(), jobs.end(), [&](const auto& j) { return j.key == job_key; });
    if (it == jobs.end()) {
      return not_found("run " + run_id + " has no job " + job_key + " (jobs: " + join_keys(jobs) +
                       ")");
    }
    const auto index = static_cast<std::size_t>(it - jobs.begin());
    const std::uint32_t attempt = it->attempt;
    // The attempt running now, or the first one of a job yet to start, followed from step to step
    // until it ends; a retry is another log.
    auto view = [run, index, followed = attempt]() mutable {
      const proto::JobStatus& status = run->execution().info().jobs[index];
      if (followed == 0) followed = status.attempt;
      JobLogView v;
      v.pairs = attempt_logs(run->execution().job_summaries()[index], followed);
      v.open = !run->finished() &&
               ((status.state == proto::JobState::kRunning && status.attempt == followed) ||
                (status.state == proto::JobState::kPending && followed == 0));
      return v;
    };
    const JobLogView now = view();
    if (now.pairs.empty() && !(follow && now.open)) return no_logs(attempt);
    return open_job_log_cursor(executor_, hub_, std::move(view), std::move(marker), select, follow);
  }
  auto info = get_run(run_id);
  if (!info) return info.error();
  if (std::none_of(info->jobs.begin(), info->jobs.end(),
                   [&](const auto& j) { return j.key == job_key; })) {
    return not_found("run " + run_id + " has no job " + job_key +
                     " (jobs: " + join_keys(info->jobs) + ")");
  }
  std::vector<std::pair<std::filesystem::path, std::filesystem::path>> pairs;
  std::uint32_t attempt = 0;
  if (auto summary = store_.load_run_summary(run_id)) {
    for (const auto& job : summary->jobs) {
      if (job.key != job_key) continue;
      attempt = job.attempts;
      pairs = attempt_logs(job, attempt);
      // A summary written before `logs` existed names only the newest pair.
      if (job.logs.empty() && job.log_paths.stdout_path && job.log_paths.stderr_path) {
        pairs.emplace_back(*job.log_paths.stdout_path, *job.log_paths.stderr_path);
      }
    }
  }
  if (pairs.empty()) return no_logs(attempt);
  auto view = [pairs = std::move(pairs)] { return JobLogView{pairs, false}; };
  return open_job_log_cursor(executor_, hub_, std::move(view), std::move(marker), select, follow);
}

Result<std::unique_ptr<ByteCursor>> RunManager::artifacts(const std::string& run_id) {
  auto summary = this->summary(run_id);
  if (!summary) return summary.error();
  auto run_dir = store_.run_dir(run_id);
  if (!run_dir) return run_dir.error();
  auto files_dir = store_.artifacts_dir(run_id);
  if (!files_dir) return files_dir.error();
  return open_artifacts_tar(executor_, hub_, *summary, *run_dir / "jobs", *files_dir);
}

}  // namespace odd::daemon
