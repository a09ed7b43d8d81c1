#include "daemon/docker_engine.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "engine/log_stream.hpp"

namespace odd::daemon {

namespace {

using Millis = std::chrono::milliseconds;

constexpr const char* kRunLabel = "odd.run";
constexpr const char* kJobLabel = "odd.job";

// Adoption needs both labels present on both sides: a request without them adopts nothing.
bool same_owner(const std::map<std::string, std::string>& ours,
                const std::map<std::string, std::string>& theirs) {
  for (const char* key : {kRunLabel, kJobLabel}) {
    auto a = ours.find(key);
    auto b = theirs.find(key);
    if (a == ours.end() || b == theirs.end() || a->second != b->second) return false;
  }
  return true;
}

std::uint64_t count(int n) { return n > 0 ? static_cast<std::uint64_t>(n) : 0; }

// The outcome of `op`, or std::nullopt when `limit` passed first (op is then cancelled and has
// finished by the time this returns).
template <class T>
asio::awaitable<std::optional<T>> within(Millis limit, asio::awaitable<T> op) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor, limit);
  auto outcome = co_await (std::move(op) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  co_return std::nullopt;
}

std::string seconds_text(Millis limit) {
  return std::to_string(limit.count() / 1000) + "." + std::to_string(limit.count() % 1000 / 100) +
         " s";
}

bool is_abort(const boost::system::system_error& e) {
  return e.code() == asio::error::operation_aborted;
}

}  // namespace

struct DockerEngine::Run {
  const ContainerRequest& request;
  const ContainerCallbacks& callbacks;
  std::string id;

  const std::string& name() const { return request.name; }
  Status context(const Status& s) const { return s.with_context("run container " + name()); }
};

DockerEngine::DockerEngine(engine::DockerClient& client, engine::ImageBuilder& builder,
                           DockerEngineOptions options)
    : client_(client), builder_(builder), options_(std::move(options)) {}

asio::awaitable<Result<ImageResult>> DockerEngine::build_image(
    const ImageRequest& request, std::function<void(const BuildProgress&)> on_progress) {
  const std::string context = "build image " + request.repository;
  engine::ImageBuildSpec spec;
  spec.context_dir = request.context_dir;
  spec.dockerfile = request.dockerfile;
  spec.repository = request.repository;
  spec.build_args = request.build_args;
  spec.target = request.target;
  spec.platform = request.platform;
  spec.network_mode = options_.build_network_mode;
  spec.no_cache = request.no_cache;
  spec.pull = request.pull;
  spec.size_limit = options_.build_context_limit;
  spec.timeout = request.timeout;
  engine::BuildStreamParser::ProgressSink progress;
  if (on_progress) {
    progress = [&on_progress](const engine::BuildProgress& p) {
      BuildProgress out;
      out.done = count(p.done);
      out.total = count(p.total);
      out.label = p.label;
      on_progress(out);
    };
  }
  // The interface has no sink for build output; the failed step's message carries what matters.
  engine::BuildStreamParser::OutputSink output = [&context](std::string_view line) {
    spdlog::debug("{}: {}", context, line);
  };
  try {
    auto built = co_await builder_.build(spec, progress, output);
    if (!built) co_return built.error().with_context(context);
    ImageResult result;
    result.image = built->image;
    result.image_id = built->image_id;
    result.cache_hit = built->cache_hit;
    co_return result;
  } catch (const boost::system::system_error& e) {
    // Asio throws at the next co_await once a cancellation arrived between two operations.
    if (!is_abort(e)) throw;
  }
  co_return cancelled(context + ": cancelled");
}

asio::awaitable<Result<ContainerExit>> DockerEngine::run_container(const ContainerRequest& request,
                                                                   ContainerCallbacks callbacks) {
  try {
    auto exit = co_await run_lifecycle(request, callbacks);
    if (exit || exit.error().code() != Code::kCancelled) co_return exit;
  } catch (const boost::system::system_error& e) {
    // Asio throws at the next co_await once a cancellation arrived between two operations.
    if (!is_abort(e)) throw;
  }
  co_return cancelled("run container " + request.name + ": cancelled");
}

asio::awaitable<Result<ContainerExit>> DockerEngine::run_lifecycle(
    const ContainerRequest& request, const ContainerCallbacks& callbacks) {
  engine::ContainerConfig config;
  config.name = request.name;
  config.image = request.image;
  config.cmd = request.cmd;
  config.env = request.env;
  config.labels = request.labels;
  config.workdir = request.workdir;
  config.binds = request.binds;
  config.network_mode = request.network_mode;
  config.tty = false;
  config.open_stdin = false;
  Run run{request, callbacks, {}};

  // A conflicting container may vanish between the failed create and the inspect: then the name
  // is free and one more create settles it.
  std::optional<Status> conflict;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto created = co_await client_.create_container(config);
    if (created) {
      run.id = std::move(*created);
      if (callbacks.on_created) callbacks.on_created(run.id);
      co_return co_await start_and_follow(run);
    }
    if (created.error().code() != Code::kAlreadyExists) co_return created.error();
    conflict = created.error();
    auto existing = co_await client_.inspect_container(request.name);
    if (!existing && existing.error().code() == Code::kNotFound) continue;
    if (!existing) co_return run.context(existing.error());
    if (!same_owner(request.labels, existing->labels)) co_return *conflict;

    const std::string& state = existing->state.status;
    spdlog::info("container {} ({}) already exists, {}: adopting it", request.name,
                 engine::short_id(existing->id), state);
    run.id = existing->id;
    if (callbacks.on_created) callbacks.on_created(run.id);
    if (state == "created") co_return co_await start_and_follow(run);
    if (state == "running") co_return co_await follow_running(run);
    if (state == "exited" || state == "dead") {
      ContainerExit exit;
      exit.container_id = existing->id;
      exit.image_id = existing->image_id;
      exit.exit_code = existing->state.exit_code;
      exit.oom_killed = existing->state.oom_killed;
      co_return exit;
    }
    co_return failed_precondition("run container " + request.name + ": it already exists and is " +
                                  state + ", a state it cannot be adopted in");
  }
  co_return *conflict;
}

asio::awaitable<Result<ContainerExit>> DockerEngine::start_and_follow(const Run& run) {
  auto wait = co_await client_.begin_wait(run.id, engine::WaitCondition::kNextExit);
  if (!wait) co_return run.context(wait.error());
  engine::AttachOptions attach_options;
  auto attached = co_await client_.attach_container(run.id, attach_options);
  if (!attached) co_return run.context(attached.error());
  Status started = co_await client_.start_container(run.id);
  if (!started.ok()) co_return run.context(started);
  Status drained = co_await drain(run, **attached);
  (*attached)->close();
  if (!drained.ok()) co_return drained;
  auto result = co_await (*wait)->result();
  if (!result) co_return run.context(result.error());
  if (!result->error.empty()) {
    co_return unavailable("run container " + run.name() + ": dockerd: " + result->error);
  }
  co_return co_await finish(run, result->status_code);
}

asio::awaitable<Result<ContainerExit>> DockerEngine::follow_running(const Run& run) {
  auto wait = co_await client_.begin_wait(run.id, engine::WaitCondition::kNotRunning);
  if (!wait) co_return run.context(wait.error());
  engine::AttachOptions attach_options;
  auto attached = co_await client_.attach_container(run.id, attach_options);
  if (!attached) co_return run.context(attached.error());
  // An attach to a container that has already exited may never end; only one made while it still
  // runs is sure to end with it.
  auto info = co_await client_.inspect_container(run.id);
  if (!info) co_return run.context(info.error());
  if (info->state.running) {
    Status drained = co_await drain(run, **attached);
    if (!drained.ok()) co_return drained;
  }
  (*attached)->close();
  auto result = co_await (*wait)->result();
  if (!result) co_return run.context(result.error());
  if (!result->error.empty()) {
    co_return unavailable("run container " + run.name() + ": dockerd: " + result->error);
  }
  co_return co_await finish(run, result->status_code);
}

asio::awaitable<Result<ContainerExit>> DockerEngine::finish(const Run& run,
                                                            std::int64_t exit_code) {
  ContainerExit exit;
  exit.container_id = run.id;
  exit.exit_code = exit_code;
  auto info = co_await client_.inspect_container(run.id);
  if (info) {
    exit.image_id = info->image_id;
    exit.oom_killed = info->state.oom_killed;
  } else if (info.error().code() == Code::kCancelled) {
    co_return info.error();
  } else {
    // The exit code is what matters and it is known; losing it over the extras would be worse.
    spdlog::warn("run container {}: exited with {}, but {}", run.name(), exit_code,
                 info.error().message());
  }
  co_return exit;
}

asio::awaitable<Status> DockerEngine::drain(const Run& run, engine::RawStream& stream) {
  const auto& on_output = run.callbacks.on_output;
  const std::string& name = run.name();
  engine::OutputSink sink = [&on_output, &name](engine::StreamId id, std::string_view piece) {
    switch (id) {
      case engine::StreamId::kStdout:
        if (on_output) on_output(OutputStream::kStdout, piece);
        break;
      case engine::StreamId::kStderr:
        if (on_output) on_output(OutputStream::kStderr, piece);
        break;
      case engine::StreamId::kSystemErr:
        spdlog::warn("container {}: dockerd: {}", name, piece);
        break;
      case engine::StreamId::kStdin:
        break;
    }
  };
  Status drained = co_await engine::drain_output(stream, false, sink);
  if (drained.ok() || drained.code() == Code::kCancelled) co_return drained;
  co_return drained.with_context("attach to container " + name);
}

asio::awaitable<Status> DockerEngine::stop_and_remove(const std::string& name_or_id,
                                                      std::chrono::seconds grace) {
  // Not bound to the caller's cancellation slot: a cancelled run must never skip its cleanup.
  auto executor = co_await asio::this_coro::executor;
  co_return co_await asio::co_spawn(
      executor, cleanup(name_or_id, grace, true),
      asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
}

asio::awaitable<Status> DockerEngine::stop(const std::string& name_or_id,
                                           std::chrono::seconds grace) {
  auto executor = co_await asio::this_coro::executor;
  co_return co_await asio::co_spawn(
      executor, cleanup(name_or_id, grace, false),
      asio::bind_cancellation_slot(asio::cancellation_slot(), asio::use_awaitable));
}

asio::awaitable<Status> DockerEngine::cleanup(std::string name, std::chrono::seconds grace,
                                              bool remove) {
  const Millis stop_limit = std::chrono::duration_cast<Millis>(grace) + options_.stop_margin;
  auto stopped = co_await within(stop_limit, client_.stop_container(name, grace));
  Status stop_status = stopped ? std::move(*stopped)
                               : deadline_exceeded("stop container " + name + ": no answer in " +
                                                   seconds_text(stop_limit));
  if (!remove) co_return stop_status;
  if (!stop_status.ok() && stop_status.code() != Code::kNotFound) {
    spdlog::warn("{}; removing container {} with force", stop_status.message(), name);
  }
  auto removed = co_await within(options_.call_timeout, client_.remove_container(name, true, true));
  Status remove_status = removed
                             ? std::move(*removed)
                             : deadline_exceeded("remove container " + name + ": no answer in " +
                                                 seconds_text(options_.call_timeout));
  if (remove_status.ok() || remove_status.code() == Code::kNotFound) co_return ok_status();
  co_return remove_status.with_context("stop and remove container " + name);
}

asio::awaitable<Result<std::vector<std::string>>> DockerEngine::containers_with_label(
    const std::string& key, const std::string& value) {
  engine::ListContainersOptions options;
  options.all = true;
  options.label_filters.push_back(key + "=" + value);
  auto listed = co_await client_.list_containers(options);
  if (!listed) co_return listed.error();
  std::vector<std::string> names;
  for (const auto& summary : *listed) {
    // Besides its own name dockerd lists legacy link aliases ("/other/alias"); those hold a '/'.
    for (const auto& n : summary.names) {
      std::string_view name = n;
      if (name.starts_with('/')) name.remove_prefix(1);
      if (!name.empty() && name.find('/') == std::string_view::npos) {
        names.emplace_back(name);
        break;
      }
    }
  }
  co_return names;
}

}  // namespace odd::daemon
