#include "daemon/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <exception>
#include <utility>
#include <variant>

#include "proto/duration.hpp"

namespace odd::daemon {

using namespace asio::experimental::awaitable_operators;
using std::chrono::milliseconds;

std::chrono::milliseconds backoff_delay(milliseconds first, int retry, double random) {
  double delay = static_cast<double>(std::max<milliseconds::rep>(first.count(), 1));
  for (int i = 1; i < retry && delay < static_cast<double>(kMaxBackoff.count()); ++i) delay *= 2;
  delay = std::min(delay, static_cast<double>(kMaxBackoff.count()));
  const double jittered = delay / 2 + delay / 2 * std::clamp(random, 0.0, 1.0);
  return milliseconds(static_cast<milliseconds::rep>(std::llround(jittered)));
}

namespace {

proto::Timestamp to_timestamp(std::chrono::system_clock::time_point time) {
  return std::chrono::floor<std::chrono::seconds>(time);
}

// Releases a permit taken from a Semaphore when the job lets go of it, however it ends.
class Permit {
 public:
  Permit() = default;
  explicit Permit(Semaphore* semaphore) : semaphore_(semaphore) {}
  Permit(const Permit&) = delete;
  Permit& operator=(const Permit&) = delete;
  ~Permit() {
    if (semaphore_ != nullptr) semaphore_->release();
  }

 private:
  Semaphore* semaphore_ = nullptr;
};

std::string step_path(const proto::JobSpec& job, std::size_t step_index,
                      const proto::StepSpec& step) {
  std::string path = proto::spec_path_key("jobs", job.name);
  path = proto::spec_path_key(path, "steps");
  path = proto::spec_path_index(path, step_index);
  return proto::spec_path_key(path, proto::step_kind_name(step.kind()));
}

Result<std::string> render_field(const std::string& text, const proto::TemplateContext& context,
                                 const std::string& path) {
  auto rendered = proto::render(text, context);
  if (!rendered) return rendered.error().with_context(path);
  return std::move(rendered->text);
}

// A download's dest after templating: relative, and no `..` to climb out of the artifacts.
bool inside_artifacts(const std::string& dest) {
  if (dest.empty() || dest.find('\0') != std::string::npos) return false;
  const std::filesystem::path path(dest);
  if (path.is_absolute()) return false;
  return std::none_of(path.begin(), path.end(), [](const auto& part) { return part == ".."; });
}

// How the names of a step's container and log files end: its id, or "step<n>".
std::string step_name(const proto::StepSpec& step, std::size_t index) {
  return step.id.value_or("step" + std::to_string(index + 1));
}

std::string step_label(const proto::StepSpec& step, std::size_t index) {
  if (step.id) return *step.id;
  std::string label(proto::step_kind_name(step.kind()));
  label.append("#").append(std::to_string(index + 1));
  return label;
}

}  // namespace

struct RunExecution::Job {
  std::size_t index = 0;
  const proto::JobInstance* instance = nullptr;
  const proto::JobSpec* spec = nullptr;
  std::vector<std::size_t> needs;
  bool launched = false;
  bool done = false;      // in a final state
  bool returned = false;  // its coroutine has ended
  bool cancel_requested = false;
  std::string cancel_reason;
  asio::cancellation_signal cancel_signal;
  proto::TemplateValues outputs;
  Clock::TimePoint last_progress_event{};
  bool progress_pending = false;
};

struct RunExecution::Attempt {
  std::uint32_t number = 1;
  std::map<std::string, proto::TemplateValues, std::less<>> step_outputs;
  proto::TemplateValues outputs;  // every step's, later ones winning
  bool test_failure = false;      // a run step exited non-zero
  bool timed_out = false;         // a step's own timeout expired
  std::string current_step;       // id of the running step, for set-output
};

RunExecution::RunExecution(SchedulerEnv& env, RunObserver& observer, RunPlan plan,
                           proto::Caller caller, proto::Timestamp created_at)
    : env_(env),
      observer_(observer),
      plan_(std::move(plan)),
      run_slots_(static_cast<std::size_t>(std::max(plan_.spec.concurrency, 1))) {
  info_.id = plan_.run_id;
  info_.name = plan_.spec.name;
  info_.state = proto::RunState::kQueued;
  info_.created_at = created_at;
  info_.caller = caller;
  for (const auto& [name, value] : plan_.secrets) {
    if (!value.empty()) secret_values_.push_back(value);
  }
  // Longer secrets first, so one that contains another is masked whole.
  std::sort(secret_values_.begin(), secret_values_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });

  for (std::size_t i = 0; i < plan_.instances.size(); ++i) {
    const proto::JobInstance& instance = plan_.instances[i];
    const proto::JobSpec& spec = plan_.spec.jobs.at(instance.job_index);
    auto job = std::make_unique<Job>();
    job->index = i;
    job->instance = &instance;
    job->spec = &spec;
    for (std::size_t j = 0; j < plan_.instances.size(); ++j) {
      if (std::find(spec.needs.begin(), spec.needs.end(), plan_.instances[j].job) !=
          spec.needs.end()) {
        job->needs.push_back(j);
      }
    }
    jobs_.push_back(std::move(job));

    proto::JobStatus status;
    status.key = instance.key;
    status.job = instance.job;
    status.matrix = instance.matrix;
    status.host = spec.host;
    info_.jobs.push_back(status);

    proto::JobSummary summary;
    summary.run_id = plan_.run_id;
    summary.job = instance.job;
    summary.key = instance.key;
    summary.matrix = instance.matrix;
    summary.host = spec.host;
    summaries_.push_back(std::move(summary));
  }
}

RunExecution::~RunExecution() = default;

std::string RunExecution::mask(std::string text) const {
  for (const std::string& secret : secret_values_) {
    for (std::size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

void RunExecution::emit(const Job* job, std::string_view type, proto::Json payload, bool durable) {
  std::optional<std::string> key;
  if (job != nullptr) key = job->instance->key;
  observer_.on_event(key, type, std::move(payload), durable);
}

void RunExecution::set_run_state(proto::RunState state) {
  info_.state = state;
  const auto now = to_timestamp(env_.clock->wall_now());
  if (state == proto::RunState::kRunning && !info_.started_at) info_.started_at = now;
  proto::Json payload = {{"state", proto::to_string(state)}};
  if (proto::is_final(state)) {
    if (!info_.started_at) info_.started_at = now;
    info_.finished_at = now;
    if (!error_.empty()) payload["error"] = error_;
  }
  emit(nullptr, proto::kEventRunState, std::move(payload), true);
}

void RunExecution::set_job_state(Job& job, proto::JobState state) {
  proto::JobStatus& status = info_.jobs[job.index];
  proto::JobSummary& summary = summaries_[job.index];
  const auto now = to_timestamp(env_.clock->wall_now());
  status.state = state;
  summary.state = state;
  if (state == proto::JobState::kRunning && !status.started_at) {
    status.started_at = now;
    summary.started_at = now;
  }
  proto::Json payload = {{"state", proto::to_string(state)}, {"attempt", status.attempt}};
  if (status.exit_code) payload["exit_code"] = *status.exit_code;
  if (summary.error) payload["error"] = *summary.error;
  if (proto::is_final(state)) {
    status.finished_at = now;
    summary.finished_at = now;
    status.outputs = job.outputs;
    summary.outputs = job.outputs;
    summary.attempts = status.attempt;
    job.done = true;
  }
  emit(&job, proto::kEventJobState, std::move(payload), true);
  if (proto::is_final(state)) observer_.on_job_final(summary);
  changed_.notify_all();
}

void RunExecution::cancel_job(Job& job, const std::string& reason) {
  if (job.cancel_requested || job.done) return;
  job.cancel_requested = true;
  job.cancel_reason = reason;
  if (job.launched) job.cancel_signal.emit(asio::cancellation_type::terminal);
}

void RunExecution::cancel(const std::string& reason) {
  if (final() || cancel_requested_) return;
  cancel_requested_ = true;
  if (error_.empty()) error_ = reason;
  for (auto& job : jobs_) cancel_job(*job, reason);
  changed_.notify_all();
}

void RunExecution::fail_fast_from(const Job& failed) {
  if (!plan_.spec.fail_fast || failed_fast_ || cancel_requested_) return;
  failed_fast_ = true;
  const std::string reason = "fail-fast: job " + failed.instance->key + " " +
                             std::string(proto::to_string(info_.jobs[failed.index].state));
  for (auto& job : jobs_) {
    if (job.get() != &failed) cancel_job(*job, reason);
  }
  changed_.notify_all();
}

asio::awaitable<void> RunExecution::run() {
  const auto executor = co_await asio::this_coro::executor;
  set_run_state(proto::RunState::kRunning);
  for (;;) {
    std::size_t running = 0;
    std::size_t open = 0;
    for (auto& job_ptr : jobs_) {
      Job& job = *job_ptr;
      if (job.launched) {
        if (!job.returned) ++running;
        continue;
      }
      if (job.done) continue;
      if (job.cancel_requested || cancel_requested_ || failed_fast_) {
        summaries_[job.index].error = mask(job.cancel_reason.empty() ? error_ : job.cancel_reason);
        set_job_state(job, proto::JobState::kCancelled);
        continue;
      }
      const Job* blocker = nullptr;
      bool ready = true;
      for (std::size_t need : job.needs) {
        const Job& other = *jobs_[need];
        if (!other.done) {
          ready = false;
        } else if (info_.jobs[need].state != proto::JobState::kSucceeded) {
          blocker = &other;
        }
      }
      if (blocker != nullptr) {
        summaries_[job.index].error =
            "needs " + blocker->instance->key + ", which ended " +
            std::string(proto::to_string(info_.jobs[blocker->index].state));
        set_job_state(job, proto::JobState::kSkipped);
        continue;
      }
      if (!ready) {
        ++open;
        continue;
      }
      job.launched = true;
      ++running;
      asio::co_spawn(executor, run_job(job.index),
                     asio::bind_cancellation_slot(
                         job.cancel_signal.slot(), [this, &job](std::exception_ptr error) {
                           if (error) {
                             // A broken invariant inside the job: it still ends, as failed.
                             try {
                               std::rethrow_exception(error);
                             } catch (const std::exception& e) {
                               spdlog::error("run {} job {}: internal error: {}", info_.id,
                                             job.instance->key, e.what());
                             }
                             if (!job.done) {
                               summaries_[job.index].error = "internal error in the daemon";
                               set_job_state(job, proto::JobState::kFailed);
                             }
                           }
                           job.returned = true;
                           changed_.notify_all();
                         }));
    }
    if (running == 0 && open == 0) break;
    const Status woken = co_await changed_.wait();
    if (!woken.ok()) {
      co_await asio::this_coro::reset_cancellation_state();
      cancel("daemon stopping");
    }
  }
  bool any_failed = false;
  for (const auto& status : info_.jobs) {
    if (status.state != proto::JobState::kSucceeded) any_failed = true;
  }
  if (cancel_requested_) {
    set_run_state(proto::RunState::kCancelled);
  } else if (any_failed) {
    set_run_state(proto::RunState::kFailed);
  } else {
    set_run_state(proto::RunState::kSucceeded);
  }
}

asio::awaitable<void> RunExecution::run_job(std::size_t index) {
  Job& job = *jobs_[index];
  const proto::JobSpec& spec = *job.spec;
  proto::JobStatus& status = info_.jobs[index];
  proto::JobSummary& summary = summaries_[index];

  auto end_cancelled = [&] {
    summary.error = mask(job.cancel_reason);
    set_job_state(job, proto::JobState::kCancelled);
  };

  {
    const Status got = co_await run_slots_.acquire();
    if (!got.ok() || job.cancel_requested) {
      co_await asio::this_coro::reset_cancellation_state();
      if (got.ok()) run_slots_.release();
      end_cancelled();
      co_return;
    }
  }
  Permit run_guard(&run_slots_);
  if (env_.global_slots != nullptr) {
    const Status got = co_await env_.global_slots->acquire();
    if (!got.ok() || job.cancel_requested) {
      co_await asio::this_coro::reset_cancellation_state();
      if (got.ok()) env_.global_slots->release();
      end_cancelled();
      co_return;
    }
  }
  Permit global_guard(env_.global_slots);

  const proto::Defaults& defaults = plan_.spec.defaults;
  const int retries = spec.retries.value_or(defaults.retries);
  const proto::DurationSpec timeout_spec = spec.timeout.value_or(defaults.timeout);
  const proto::DurationSpec backoff_spec = spec.backoff.value_or(defaults.backoff);

  proto::TemplateContext context;
  context.vars = plan_.vars;
  context.secrets = plan_.secrets;
  context.run_id = plan_.run_id;
  context.workdir = plan_.workdir;
  for (const auto& [key, value] : job.instance->matrix) context.matrix[key] = value;
  auto duration_of = [&](const proto::DurationSpec& duration,
                         std::string_view key) -> Result<milliseconds> {
    if (duration.value) return *duration.value;
    const std::string path = proto::spec_path_key(proto::spec_path_key("jobs", spec.name), key);
    auto rendered = proto::render(duration.text, context);
    if (!rendered) return rendered.error().with_context(path);
    auto parsed = proto::parse_duration(rendered->text);
    if (!parsed) return parsed.error().with_context(path);
    return *parsed;
  };
  auto timeout = duration_of(timeout_spec, "timeout");
  auto backoff = duration_of(backoff_spec, "backoff");
  if (!timeout || !backoff) {
    summary.error = mask((!timeout ? timeout.error() : backoff.error()).message());
    set_job_state(job, proto::JobState::kFailed);
    co_return;
  }

  for (std::uint32_t number = 1;; ++number) {
    Attempt attempt;
    attempt.number = number;
    status.attempt = number;
    status.exit_code.reset();
    status.progress = {};
    summary.exit_code.reset();
    summary.error.reset();
    summary.suites.clear();
    set_job_state(job, proto::JobState::kRunning);

    auto outcome = co_await (run_attempt(job, attempt) || env_.clock->sleep_for(*timeout));
    co_await asio::this_coro::reset_cancellation_state();
    job.outputs = attempt.outputs;

    if (job.cancel_requested) {
      end_cancelled();
      co_return;
    }
    if (outcome.index() == 1) {
      summary.error = "attempt " + std::to_string(number) + " exceeded the job's timeout of " +
                      proto::format_duration(*timeout);
      set_job_state(job, proto::JobState::kTimedOut);
      fail_fast_from(job);
      co_return;
    }
    const Status result = std::get<0>(outcome);
    if (result.ok()) {
      set_job_state(job, proto::JobState::kSucceeded);
      co_return;
    }
    summary.error = mask(result.message());
    if (attempt.timed_out) {
      set_job_state(job, proto::JobState::kTimedOut);
      fail_fast_from(job);
      co_return;
    }
    const bool retry_exit = attempt.test_failure && [&] {
      for (const auto& step : spec.steps) {
        if (const auto* run = std::get_if<proto::RunStep>(&step.body); run && run->retry_on_exit) {
          return true;
        }
      }
      return false;
    }();
    const bool retryable = attempt.test_failure ? retry_exit : result.retryable();
    if (!retryable || static_cast<int>(number) > retries) {
      set_job_state(job, proto::JobState::kFailed);
      fail_fast_from(job);
      co_return;
    }
    const milliseconds delay =
        backoff_delay(*backoff, static_cast<int>(number), env_.random ? env_.random() : 0.5);
    set_job_state(job, proto::JobState::kRetrying);
    emit(&job, proto::kEventAttemptRetry,
         {{"attempt", number + 1}, {"delay_ms", delay.count()}, {"error", *summary.error}}, true);
    const Status slept = co_await env_.clock->sleep_for(delay);
    if (!slept.ok() || job.cancel_requested) {
      co_await asio::this_coro::reset_cancellation_state();
      end_cancelled();
      co_return;
    }
  }
}

asio::awaitable<Status> RunExecution::run_attempt(Job& job, Attempt& attempt) {
  co_return co_await run_steps(job, attempt);
}

asio::awaitable<Status> RunExecution::run_steps(Job& job, Attempt& attempt) {
  const proto::JobSpec& spec = *job.spec;
  for (std::size_t i = 0; i < spec.steps.size(); ++i) {
    const proto::StepSpec& step = spec.steps[i];
    const std::string label = step_label(step, i);
    attempt.current_step = step.id.value_or("");
    emit(&job, proto::kEventStepStart,
         {{"index", i}, {"step", label}, {"kind", proto::step_kind_name(step.kind())}});

    std::optional<milliseconds> step_timeout;
    if (step.timeout) {
      if (step.timeout->value) {
        step_timeout = *step.timeout->value;
      } else {
        proto::TemplateContext context;
        context.vars = plan_.vars;
        for (const auto& [key, value] : job.instance->matrix) context.matrix[key] = value;
        auto rendered = proto::render(step.timeout->text, context);
        auto parsed = rendered ? proto::parse_duration(rendered->text)
                               : Result<milliseconds>(rendered.error());
        if (!parsed) {
          co_return parsed.error().with_context(step_path(spec, i, step) + ".timeout");
        }
        step_timeout = *parsed;
      }
    }

    Status result;
    auto run_one = [&]() -> asio::awaitable<Status> {
      switch (step.kind()) {
        case proto::StepKind::kBuild:
          co_return co_await run_build_step(job, attempt, i);
        case proto::StepKind::kRun:
          co_return co_await run_container_step(job, attempt, i);
        case proto::StepKind::kExec:
          co_return co_await run_exec_step(job, attempt, i);
        case proto::StepKind::kUpload:
          co_return co_await run_upload_step(job, attempt, i);
        case proto::StepKind::kDownload:
          co_return co_await run_download_step(job, attempt, i);
        default:
          co_return failed_precondition(step_path(spec, i, step) + ": not supported yet");
      }
    };
    if (step_timeout) {
      auto outcome = co_await (run_one() || env_.clock->sleep_for(*step_timeout));
      if (outcome.index() == 1) {
        co_await asio::this_coro::reset_cancellation_state();
        attempt.timed_out = true;
        result = deadline_exceeded("step " + label + " exceeded its timeout of " +
                                   proto::format_duration(*step_timeout));
      } else {
        result = std::get<0>(outcome);
      }
    } else {
      result = co_await run_one();
    }

    proto::Json end = {{"index", i}, {"step", label}, {"status", result.ok() ? "ok" : "failed"}};
    if (!result.ok()) end["error"] = mask(result.message());
    emit(&job, proto::kEventStepEnd, std::move(end));
    if (!result.ok()) co_return result;
  }
  co_return ok_status();
}

proto::TemplateContext RunExecution::step_context(const Job& job, const Attempt& attempt) const {
  proto::TemplateContext context;
  context.vars = plan_.vars;
  context.secrets = plan_.secrets;
  context.steps = attempt.step_outputs;
  context.run_id = plan_.run_id;
  context.workdir = plan_.workdir;
  for (const auto& [key, value] : job.instance->matrix) context.matrix[key] = value;
  for (std::size_t need : job.needs) {
    auto& outputs = context.needs[jobs_[need]->instance->job];
    for (const auto& [key, value] : jobs_[need]->outputs) outputs[key] = value;
  }
  return context;
}

asio::awaitable<Status> RunExecution::run_build_step(Job& job, Attempt& attempt,
                                                     std::size_t step_index) {
  const proto::JobSpec& spec = *job.spec;
  const proto::StepSpec& step = spec.steps[step_index];
  const auto& build = std::get<proto::BuildStep>(step.body);
  const std::string path = step_path(spec, step_index, step);

  const proto::TemplateContext context = step_context(job, attempt);
  auto field = [&](const std::string& text, std::string_view field_key) {
    return render_field(text, context, proto::spec_path_key(path, field_key));
  };

  ImageRequest request;
  auto context_dir = field(build.context, "context");
  if (!context_dir) co_return context_dir.error();
  std::filesystem::path dir(*context_dir);
  if (dir.is_relative()) dir = std::filesystem::path(plan_.workdir) / dir;
  request.context_dir = dir.lexically_normal();
  if (Status allowed = env_.check_path(request.context_dir, "build context"); !allowed.ok()) {
    co_return allowed.with_context(proto::spec_path_key(path, "context"));
  }
  if (!build.dockerfile.empty()) {
    auto dockerfile = field(build.dockerfile, "dockerfile");
    if (!dockerfile) co_return dockerfile.error();
    request.dockerfile = *dockerfile;
  }
  auto repository = field(build.repository, "repository");
  if (!repository) co_return repository.error();
  request.repository = *repository;
  for (const auto& [key, value] : build.args) {
    auto rendered = field(value, "args");
    if (!rendered) co_return rendered.error();
    request.build_args[key] = *rendered;
  }
  request.target = build.target;
  request.platform = build.platform;
  request.no_cache = build.no_cache;
  request.pull = build.pull;

  auto engine_or = engine_of(job);
  if (!engine_or) co_return engine_or.error();
  ContainerEngine* engine = *engine_or;
  auto on_progress = [this, &job](const BuildProgress& progress) {
    proto::JobStatus& status = info_.jobs[job.index];
    status.progress = {progress.done, progress.total, progress.label};
    emit(&job, proto::kEventBuildProgress,
         {{"done", progress.done}, {"total", progress.total}, {"label", mask(progress.label)}});
  };
  auto built = co_await engine->build_image(request, on_progress);
  if (!built) co_return built.error().with_context("step " + step_label(step, step_index));

  proto::TemplateValues outputs;
  outputs["image"] = built->image;
  outputs["image_id"] = built->image_id;
  outputs["cache_hit"] = built->cache_hit ? "true" : "false";
  summaries_[job.index].image = built->image;
  summaries_[job.index].image_digest = built->image_id;
  for (const auto& [key, value] : outputs) attempt.outputs[key] = value;
  if (step.id) attempt.step_outputs[*step.id] = std::move(outputs);
  co_return ok_status();
}

asio::awaitable<Status> RunExecution::run_container_step(Job& job, Attempt& attempt,
                                                         std::size_t step_index) {
  const proto::JobSpec& spec = *job.spec;
  const proto::StepSpec& step = spec.steps[step_index];
  const auto& run = std::get<proto::RunStep>(step.body);
  const std::string path = step_path(spec, step_index, step);
  const std::string& key = job.instance->key;

  const proto::TemplateContext context = step_context(job, attempt);
  auto field = [&](const std::string& text, std::string_view field_key) {
    return render_field(text, context, proto::spec_path_key(path, field_key));
  };

  // A job's one run step names its container after the job (DESIGN §9); in a job with several,
  // each is named after its step too, as exec steps are, so no two share a container or log name.
  ContainerRequest request;
  request.name = "odd-" + plan_.run_id + "-" + key;
  if (std::count_if(spec.steps.begin(), spec.steps.end(), [](const proto::StepSpec& s) {
        return std::holds_alternative<proto::RunStep>(s.body);
      }) > 1) {
    request.name += "-" + step_name(step, step_index);
  }
  if (attempt.number > 1) request.name += "-" + std::to_string(attempt.number);
  auto image = field(run.image, "image");
  if (!image) co_return image.error();
  request.image = *image;
  if (const auto* argv = std::get_if<std::vector<std::string>>(&run.cmd)) {
    for (const std::string& arg : *argv) {
      auto rendered = field(arg, "cmd");
      if (!rendered) co_return rendered.error();
      request.cmd.push_back(*rendered);
    }
  } else {
    auto line = field(std::get<std::string>(run.cmd), "cmd");
    if (!line) co_return line.error();
    request.cmd = {"/bin/sh", "-c", *line};
  }
  for (const auto& [name, value] : run.env) {
    auto rendered = field(value, "env");
    if (!rendered) co_return rendered.error();
    request.env.push_back(name + "=" + *rendered);
  }
  for (std::size_t i = 0; i < run.mounts.size(); ++i) {
    const std::string mount_path = proto::spec_path_index(proto::spec_path_key(path, "mounts"), i);
    auto rendered = proto::render(run.mounts[i], context);
    if (!rendered) co_return rendered.error().with_context(mount_path);
    auto mount = proto::parse_mount(rendered->text);
    if (!mount) co_return mount.error().with_context(mount_path);
    std::filesystem::path source;
    if (mount->type == proto::Mount::Type::kCache) {
      auto dir = env_.cache_dir(mount->source);
      if (!dir) co_return dir.error().with_context(mount_path);
      source = *dir;
    } else {
      source = std::filesystem::path(mount->source);
      if (source.is_relative()) source = std::filesystem::path(plan_.workdir) / source;
      source = source.lexically_normal();
      if (Status allowed = env_.check_path(source, "bind mount source"); !allowed.ok()) {
        co_return allowed.with_context(mount_path);
      }
    }
    std::string bind = source.string();
    bind.append(":").append(mount->target);
    if (mount->read_only) bind.append(":ro");
    request.binds.push_back(std::move(bind));
  }
  if (!run.workdir.empty()) {
    auto workdir = field(run.workdir, "workdir");
    if (!workdir) co_return workdir.error();
    request.workdir = *workdir;
  }
  request.network_mode = env_.default_network;
  request.labels = {{"odd.run", plan_.run_id},
                    {"odd.job", key},
                    {"odd.attempt", std::to_string(attempt.number)},
                    {"odd.daemon", env_.instance_id}};

  auto engine_or = engine_of(job);
  if (!engine_or) co_return engine_or.error();
  ContainerEngine* engine = *engine_or;

  proto::JobSummary& summary = summaries_[job.index];
  summary.image = request.image;
  summary.container_name = request.name;
  summary.container_id.reset();

  emit(&job, "container.create", {{"name", request.name}, {"attempt", attempt.number}}, true);
  auto capture = open_job_log(job, attempt, request.name, step_label(step, step_index));
  if (!capture) co_return capture.error();
  JobLog& log = **capture;

  ContainerCallbacks callbacks;
  callbacks.on_created = [this, &job, &summary, &request](const std::string& id) {
    summary.container_id = id;
    observer_.on_container(job.instance->key, request.name, id);
  };
  callbacks.on_output = [&log](OutputStream stream, std::string_view bytes) {
    log.write(stream, bytes);
  };

  auto exited = co_await engine->run_container(request, std::move(callbacks));
  // Whatever happened, the container is cleaned up before the step ends, even when this
  // coroutine was cancelled (deadline, fail-fast, cancel request).
  co_await asio::this_coro::reset_cancellation_state();
  const Status closed = log.close();
  co_await cleanup_container(job, request.name, run.keep);

  if (!exited) {
    co_return exited.error().with_context("step " + step_label(step, step_index));
  }
  if (!closed.ok()) spdlog::warn("run {} job {}: {}", plan_.run_id, key, closed.message());
  summary.container_id = exited->container_id;
  summary.image_digest = exited->image_id;
  summary.exit_code = exited->exit_code;
  info_.jobs[job.index].exit_code = exited->exit_code;

  proto::TemplateValues outputs;
  if (step.id) outputs = attempt.step_outputs[*step.id];
  outputs["exit_code"] = std::to_string(exited->exit_code);
  outputs["container_id"] = exited->container_id;
  outputs["container_name"] = request.name;
  for (const auto& [name, value] : outputs) attempt.outputs[name] = value;
  if (step.id) attempt.step_outputs[*step.id] = std::move(outputs);

  if (exited->exit_code != 0) {
    attempt.test_failure = true;
    std::string message = "step " + step_label(step, step_index) + ": container " + request.name +
                          " exited with code " + std::to_string(exited->exit_code);
    if (exited->oom_killed) message += " (killed: out of memory)";
    co_return failed_precondition(std::move(message));
  }
  co_return ok_status();
}

Result<std::unique_ptr<JobLog>> RunExecution::open_job_log(Job& job, Attempt& attempt,
                                                           const std::string& name,
                                                           const std::string& step) {
  CaptureListener listener;
  listener.on_progress = [this, &job](const proto::Progress& progress) {
    info_.jobs[job.index].progress = progress;
    const auto now = env_.clock->now();
    if (progress.done >= progress.total || now - job.last_progress_event >= milliseconds(100)) {
      job.last_progress_event = now;
      emit(&job, proto::kEventJobProgress,
           {{"done", progress.done}, {"total", progress.total}, {"label", progress.label}});
    }
  };
  listener.on_suite = [this, &job](const proto::SuiteResult& suite) {
    summaries_[job.index].suites.push_back(suite);
    proto::Json payload = {{"name", suite.name}, {"status", proto::to_string(suite.status)}};
    if (suite.expect) payload["expect"] = *suite.expect;
    emit(&job, proto::kEventSuite, std::move(payload));
  };
  listener.on_output = [&attempt](const std::string& key, const std::string& value) {
    attempt.outputs[key] = value;
    if (!attempt.current_step.empty()) attempt.step_outputs[attempt.current_step][key] = value;
  };
  auto capture = observer_.open_capture(job.instance->key, name, std::move(listener));
  if (!capture) return capture.error().with_context("opening the logs of " + name);
  const JobLog& log = **capture;
  proto::JobSummary& summary = summaries_[job.index];
  summary.log_paths.stdout_path = log.stdout_path().string();
  summary.log_paths.stderr_path = log.stderr_path().string();
  summary.logs.push_back(
      {step, attempt.number, name, log.stdout_path().string(), log.stderr_path().string()});
  return capture;
}

Result<std::shared_ptr<RemoteHost>> RunExecution::remote_of(const Job& job,
                                                            const std::string& path) const {
  const std::string& host = job.spec->host;
  std::shared_ptr<RemoteHost> remote = env_.remote_for ? env_.remote_for(host) : nullptr;
  if (remote == nullptr) {
    return failed_precondition(path + ": host \"" + host +
                               "\" is not among the daemon's configured remote hosts (was it "
                               "removed from the config by a reload?)");
  }
  return remote;
}

Result<ContainerEngine*> RunExecution::engine_of(const Job& job) const {
  const std::string& host = job.spec->host;
  ContainerEngine* engine = env_.engine_for ? env_.engine_for(host) : nullptr;
  if (engine != nullptr) return engine;
  if (host == "local") return failed_precondition("host local: no container engine");
  return failed_precondition("host " + host + ": remote docker not available");
}

asio::awaitable<Status> RunExecution::run_exec_step(Job& job, Attempt& attempt,
                                                    std::size_t step_index) {
  const proto::JobSpec& spec = *job.spec;
  const proto::StepSpec& step = spec.steps[step_index];
  const auto& exec = std::get<proto::ExecStep>(step.body);
  const std::string path = step_path(spec, step_index, step);
  const std::string label = step_label(step, step_index);

  const proto::TemplateContext context = step_context(job, attempt);
  auto field = [&](const std::string& text, std::string_view field_key) {
    return render_field(text, context, proto::spec_path_key(path, field_key));
  };
  RemoteCommand command;
  auto line = field(exec.cmd, "cmd");
  if (!line) co_return line.error();
  command.command = std::move(*line);
  for (const auto& [name, value] : exec.env) {
    auto rendered = field(value, "env");
    if (!rendered) co_return rendered.error();
    command.env[name] = std::move(*rendered);
  }
  auto remote = remote_of(job, path);
  if (!remote) co_return remote.error();

  // Named like a container of the job, with the step: one log pair per exec step and attempt.
  std::string name =
      "odd-" + plan_.run_id + "-" + job.instance->key + "-" + step_name(step, step_index);
  if (attempt.number > 1) name += "-" + std::to_string(attempt.number);
  auto capture = open_job_log(job, attempt, name, label);
  if (!capture) co_return capture.error();
  JobLog& log = **capture;

  std::function<void(OutputStream, std::string_view)> on_output =
      [&log](OutputStream stream, std::string_view bytes) { log.write(stream, bytes); };
  auto exited = co_await (*remote)->exec(command, std::move(on_output));
  co_await asio::this_coro::reset_cancellation_state();
  if (const Status closed = log.close(); !closed.ok()) {
    spdlog::warn("run {} job {}: {}", plan_.run_id, job.instance->key, closed.message());
  }
  if (!exited) co_return exited.error().with_context("step " + label);

  proto::JobSummary& summary = summaries_[job.index];
  summary.exit_code = exited->exit_code;
  info_.jobs[job.index].exit_code = exited->exit_code;
  proto::TemplateValues outputs;
  if (step.id) outputs = attempt.step_outputs[*step.id];
  outputs["exit_code"] = std::to_string(exited->exit_code);
  for (const auto& [key, value] : outputs) attempt.outputs[key] = value;
  if (step.id) attempt.step_outputs[*step.id] = std::move(outputs);

  if (!exited->signal.empty()) {
    attempt.test_failure = true;
    co_return failed_precondition("step " + label + ": the command on host " + spec.host +
                                  " was killed by signal " + exited->signal);
  }
  if (exited->exit_code != 0) {
    attempt.test_failure = true;
    co_return failed_precondition("step " + label + ": the command on host " + spec.host +
                                  " exited with code " + std::to_string(exited->exit_code));
  }
  co_return ok_status();
}

asio::awaitable<Status> RunExecution::run_upload_step(Job& job, Attempt& attempt,
                                                      std::size_t step_index) {
  const proto::JobSpec& spec = *job.spec;
  const proto::StepSpec& step = spec.steps[step_index];
  const auto& upload = std::get<proto::UploadStep>(step.body);
  const std::string path = step_path(spec, step_index, step);
  const std::string label = step_label(step, step_index);

  const proto::TemplateContext context = step_context(job, attempt);
  auto field = [&](const std::string& text, std::string_view field_key) {
    return render_field(text, context, proto::spec_path_key(path, field_key));
  };
  auto dest = field(upload.dest, "dest");
  if (!dest) co_return dest.error();
  proto::TemplateValues outputs;
  if (upload.content) {
    auto content = field(*upload.content, "content");
    if (!content) co_return content.error();
    auto remote = remote_of(job, path);
    if (!remote) co_return remote.error();
    const unsigned mode = upload.mode.value_or(0600);
    const Status sent = co_await (*remote)->upload_content(*content, *dest, mode);
    if (!sent.ok()) co_return sent.with_context("step " + label);
    outputs["files"] = "1";
    outputs["bytes"] = std::to_string(content->size());
  } else {
    auto src = field(upload.src.value_or(""), "src");
    if (!src) co_return src.error();
    std::filesystem::path source(*src);
    if (source.is_relative()) source = std::filesystem::path(plan_.workdir) / source;
    source = source.lexically_normal();
    if (Status allowed = env_.check_path(source, "upload source"); !allowed.ok()) {
      co_return allowed.with_context(proto::spec_path_key(path, "src"));
    }
    auto remote = remote_of(job, path);
    if (!remote) co_return remote.error();
    auto sent = co_await (*remote)->upload(source, *dest, upload.mode);
    if (!sent) co_return sent.error().with_context("step " + label);
    outputs["files"] = std::to_string(sent->files);
    outputs["bytes"] = std::to_string(sent->bytes);
  }
  for (const auto& [key, value] : outputs) attempt.outputs[key] = value;
  if (step.id) attempt.step_outputs[*step.id] = std::move(outputs);
  co_return ok_status();
}

asio::awaitable<Status> RunExecution::run_download_step(Job& job, Attempt& attempt,
                                                        std::size_t step_index) {
  const proto::JobSpec& spec = *job.spec;
  const proto::StepSpec& step = spec.steps[step_index];
  const auto& download = std::get<proto::DownloadStep>(step.body);
  const std::string path = step_path(spec, step_index, step);
  const std::string label = step_label(step, step_index);

  const proto::TemplateContext context = step_context(job, attempt);
  auto field = [&](const std::string& text, std::string_view field_key) {
    return render_field(text, context, proto::spec_path_key(path, field_key));
  };
  auto src = field(download.src, "src");
  if (!src) co_return src.error();
  auto dest = field(download.dest, "dest");
  if (!dest) co_return dest.error();
  if (!inside_artifacts(*dest)) {
    co_return invalid_argument(proto::spec_path_key(path, "dest") +
                               ": expected a relative path inside the run's artifacts, got \"" +
                               *dest + "\"");
  }
  auto remote = remote_of(job, path);
  if (!remote) co_return remote.error();
  auto dir = observer_.download_dir(job.instance->key);
  if (!dir) co_return dir.error().with_context("step " + label);
  auto got = co_await (*remote)->download(*src, *dir, *dest);
  if (!got) co_return got.error().with_context("step " + label);

  proto::TemplateValues outputs;
  outputs["files"] = std::to_string(got->files);
  outputs["bytes"] = std::to_string(got->bytes);
  outputs["path"] =
      job.instance->key + "/" + std::filesystem::path(*dest).lexically_normal().generic_string();
  for (const auto& [key, value] : outputs) attempt.outputs[key] = value;
  if (step.id) attempt.step_outputs[*step.id] = std::move(outputs);
  co_return ok_status();
}

asio::awaitable<void> RunExecution::cleanup_container(Job& job, const std::string& name,
                                                      bool keep) {
  ContainerEngine* engine = env_.engine_for(job.spec->host);
  if (engine == nullptr) co_return;
  const auto executor = co_await asio::this_coro::executor;
  const std::chrono::seconds grace = env_.stop_grace;
  // Spawned apart from this coroutine's cancellation slot: a later cancel cannot cut it short.
  auto work = keep ? engine->stop(name, grace) : engine->stop_and_remove(name, grace);
  const Status cleaned = co_await asio::co_spawn(
      executor, std::move(work),
      asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
  if (!cleaned.ok()) {
    spdlog::error("run {} job {}: cleaning up container {}: {}", plan_.run_id, job.instance->key,
                  name, cleaned.message());
  }
}

proto::RunSummary RunExecution::summary() const {
  proto::RunSummary summary;
  summary.run_id = info_.id;
  summary.name = info_.name;
  summary.state = info_.state;
  summary.started_at = info_.started_at;
  summary.finished_at = info_.finished_at;
  if (info_.started_at && info_.finished_at) {
    summary.duration_ms =
        std::chrono::duration_cast<milliseconds>(*info_.finished_at - *info_.started_at).count();
  }
  summary.caller = info_.caller;
  summary.jobs = summaries_;
  summary.counts = proto::count_jobs(summaries_);
  return summary;
}

}  // namespace odd::daemon
