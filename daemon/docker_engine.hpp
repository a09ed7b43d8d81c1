#pragma once
// DockerEngine: ContainerEngine over one dockerd, through engine/'s DockerClient and ImageBuilder
// (DESIGN §6). It borrows both (the caller owns them and keeps them alive longer) and keeps no
// state between calls, so concurrent calls for different containers are fine. Use it from the
// strand of its DockerClient; callbacks run there too.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "daemon/container_engine.hpp"
#include "engine/docker_client.hpp"
#include "engine/image_builder.hpp"

namespace odd::daemon {

struct DockerEngineOptions {
  // Network mode of a build's RUN steps: dockerd may run without a bridge (DESIGN §6).
  std::string build_network_mode = "none";
  // Largest build context in bytes; 0: no limit. Over it a build fails naming the largest paths.
  std::uint64_t build_context_limit = 0;
  // stop() and stop_and_remove() give up on a stop after `grace` plus this.
  std::chrono::milliseconds stop_margin{10000};
  // Bound on each other call stop_and_remove() makes (the remove).
  std::chrono::milliseconds call_timeout{60000};
};

class DockerEngine final : public ContainerEngine {
 public:
  DockerEngine(engine::DockerClient& client, engine::ImageBuilder& builder,
               DockerEngineOptions options = {});

  // See ContainerEngine. Errors carry engine's message with "build image <repository>" before it.
  asio::awaitable<Result<ImageResult>> build_image(
      const ImageRequest& request, std::function<void(const BuildProgress&)> on_progress) override;

  // See ContainerEngine. A fresh container is created (no TTY, no stdin), waited on
  // (next-exit), attached and only then started, so neither its output nor a fast exit is missed.
  // Adoption on a name conflict (same odd.run and odd.job labels), by the state dockerd reports:
  //  - created: started and followed like a fresh one;
  //  - running: waited on (not-running) and attached with stream=1 only — what it printed
  //    before the attach is NOT delivered to on_output (the caller recovers it from /logs);
  //  - exited or dead: its exit code and OOM flag come from inspect; it is not started again.
  //  - anything else (paused, restarting, removing): failed_precondition.
  // A conflict with a container of other labels is already_exists with dockerd's message. A
  // broken or malformed output stream is returned as "attach to container NAME: ..."; other
  // steps' errors as "run container NAME: <engine's message>". cancelled when the awaiting
  // coroutine is: the pending wait and the attach stream are closed before it returns, and
  // the container is left as it is. dockerd's system-error frames are logged, not delivered.
  // `request` must outlive the call: co_await it in the same full-expression.
  asio::awaitable<Result<ContainerExit>> run_container(const ContainerRequest& request,
                                                       ContainerCallbacks callbacks) override;

  // See ContainerEngine. Stops (a failed stop is logged, not returned: the forced remove kills
  // anyway), then removes with force and its anonymous volumes; not_found at either step is
  // success. Once started it ignores cancellation of the awaiting coroutine and is bounded by
  // `grace` + stop_margin + call_timeout; deadline_exceeded or dockerd's error otherwise.
  asio::awaitable<Status> stop_and_remove(const std::string& name_or_id,
                                          std::chrono::seconds grace) override;

  // See ContainerEngine. not_found when there is no such container; ignores cancellation like
  // stop_and_remove(), bounded by `grace` + stop_margin.
  asio::awaitable<Status> stop(const std::string& name_or_id, std::chrono::seconds grace) override;

  // See ContainerEngine. Names without the leading '/'; dockerd's error otherwise.
  asio::awaitable<Result<std::vector<std::string>>> containers_with_label(
      const std::string& key, const std::string& value) override;

 private:
  struct Run;

  asio::awaitable<Result<ContainerExit>> run_lifecycle(const ContainerRequest& request,
                                                       const ContainerCallbacks& callbacks);
  // Waits (next-exit), attaches, starts, drains, reads the exit: a created container to its end.
  asio::awaitable<Result<ContainerExit>> start_and_follow(const Run& run);
  // Waits (not-running) and attaches to a container that an earlier daemon started.
  asio::awaitable<Result<ContainerExit>> follow_running(const Run& run);
  // Reads the exit details that only inspect has, after the exit code is known.
  asio::awaitable<Result<ContainerExit>> finish(const Run& run, std::int64_t exit_code);
  asio::awaitable<Status> drain(const Run& run, engine::RawStream& stream);
  // The stop (and remove) itself, run on a coroutine of its own that nobody cancels.
  asio::awaitable<Status> cleanup(std::string name, std::chrono::seconds grace, bool remove);

  engine::DockerClient& client_;
  engine::ImageBuilder& builder_;
  DockerEngineOptions options_;
};

}  // namespace odd::daemon
