#pragma once
// RunManager: the daemon's runs. It turns submit requests into validated plans, runs each as a
// RunExecution, stores what happens (RunStore, LogCapture, LogHub) and answers the control API
// (it is the ControlService). Active runs live in memory; finished ones are read back from the
// store. Everything runs on the daemon's I/O strand.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "daemon/control_service.hpp"
#include "daemon/host_registry.hpp"
#include "daemon/log_hub.hpp"
#include "daemon/notifier.hpp"
#include "daemon/run_store.hpp"
#include "daemon/scheduler.hpp"

namespace odd::engine {
class DockerClient;
}

namespace odd::daemon {

struct RunManagerOptions {
  std::string daemon_version;
  std::size_t max_concurrency = 8;
  RetentionPolicy retention;
  std::chrono::seconds shutdown_grace{30};
  const HostRegistry* hosts = nullptr;  // the remote hosts; null: none. Outlives the manager.
  proto::TemplateValues secrets;        // from the daemon's config, name → value
};

class RunManager final : public ControlService {
 public:
  // `env.global_slots` is replaced by the manager's own cap. `docker` answers version and health;
  // it may be null in tests.
  RunManager(asio::any_io_executor executor, RunStore& store, LogHub& hub, SchedulerEnv env,
             engine::DockerClient* docker, RunManagerOptions options);
  ~RunManager() override;

  // At start: runs an earlier daemon left unfinished are failed with the reason, and containers
  // labelled with this daemon's instance id that no active run claims are removed, from the local
  // dockerd and then from each remote host with `docker: true`.
  asio::awaitable<void> reconcile();
  // Cancels every run ("daemon stopping") and waits, at most shutdown_grace, for their cleanup.
  asio::awaitable<void> shutdown();
  std::size_t active_runs() const { return active_.size(); }
  // The daemon's secrets after a config reload; runs already submitted keep theirs.
  void set_secrets(proto::TemplateValues secrets) { options_.secrets = std::move(secrets); }

  asio::awaitable<Result<proto::Json>> version() override;
  asio::awaitable<Result<proto::Json>> health() override;
  asio::awaitable<Result<Submitted>> submit(proto::SubmitRequest request,
                                            proto::Caller caller) override;
  void submitter_gone(const std::string& run_id, const std::string& reason) override;
  Result<std::vector<proto::RunInfo>> list_runs(std::optional<proto::RunState> state,
                                                std::size_t limit) override;
  Result<proto::RunInfo> get_run(const std::string& run_id) override;
  Status cancel_run(const std::string& run_id) override;
  Result<proto::RunSummary> summary(const std::string& run_id) override;
  Result<std::unique_ptr<EventCursor>> events(const std::string& run_id, std::uint64_t since,
                                              bool follow) override;
  Result<std::unique_ptr<ByteCursor>> logs(const std::string& run_id, const std::string& job_key,
                                           LogSelect select, bool follow) override;
  Result<std::unique_ptr<ByteCursor>> artifacts(const std::string& run_id) override;

 private:
  class ActiveRun;
  class LiveEventCursor;

  Result<RunPlan> plan(const proto::SubmitRequest& request, std::string run_id) const;
  // Removes the containers an earlier daemon with this instance id left on `engine` (`where`).
  asio::awaitable<void> remove_leftovers(ContainerEngine& engine, std::string where);
  asio::awaitable<void> drive(std::shared_ptr<ActiveRun> run);
  std::shared_ptr<ActiveRun> find_active(const std::string& run_id) const;

  asio::any_io_executor executor_;
  RunStore& store_;
  LogHub& hub_;
  SchedulerEnv env_;
  engine::DockerClient* docker_;
  RunManagerOptions options_;
  Semaphore global_slots_;
  std::map<std::string, std::shared_ptr<ActiveRun>> active_;
  Notifier run_ended_;
  bool stopping_ = false;
};

}  // namespace odd::daemon
