#pragma once
// ContainerEngine: the narrow interface the scheduler sees for one host's container runtime
// (DESIGN §2, §6). DockerEngine implements it over engine/ (DockerClient, ImageBuilder); tests use
// FakeEngine. It knows containers and images, never runs or jobs: names, labels and sinks come
// from the caller. Used from the daemon's I/O strand; every call honours cancellation of the
// awaiting coroutine.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace odd::daemon {

namespace asio = boost::asio;

// What builds one image; the image is tagged <repository>:<first 12 hex of the content hash>.
struct ImageRequest {
  std::filesystem::path context_dir;      // absolute, already checked against allowed_roots
  std::string dockerfile = "Dockerfile";  // relative to context_dir
  std::string repository;                 // already normalised (lowercase)
  std::map<std::string, std::string> build_args;
  std::string target;
  std::string platform;
  bool no_cache = false;
  bool pull = false;
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
};

struct ImageResult {
  std::string image;     // "odd-arch:4c1d2e3f4a5b"
  std::string image_id;  // "sha256:..."
  bool cache_hit = false;
};

// Build progress for the job's progress bar: `done` of `total` steps, and the step's text.
struct BuildProgress {
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  std::string label;
};

struct ContainerRequest {
  std::string name;   // deterministic: odd-<run-id>-<job-key>[-<attempt>]
  std::string image;  // a reference dockerd resolves locally
  // argv; empty means the image's own command. A spec's string command arrives here as
  // {"/bin/sh", "-c", text}.
  std::vector<std::string> cmd;
  std::vector<std::string> env;               // "KEY=value": only what the spec declared
  std::vector<std::string> binds;             // "/host/src:/dst[:ro]", sources already checked
  std::map<std::string, std::string> labels;  // odd.run, odd.job, odd.attempt, odd.daemon, ...
  std::string workdir;                        // "" keeps the image's
  std::string network_mode;                   // "" keeps dockerd's default
};

// Which of the container's output streams a piece of output came from.
enum class OutputStream { kStdout, kStderr };

struct ContainerCallbacks {
  // Called once, as soon as the container exists (created or adopted), before it starts: the
  // caller writes the cidfile and records the id.
  std::function<void(const std::string& id)> on_created;
  // Every piece of output in arrival order, per stream byte-exact; pieces may split lines.
  // Called on the I/O strand; it must not block.
  std::function<void(OutputStream, std::string_view)> on_output;
};

struct ContainerExit {
  std::string container_id;
  std::string image_id;  // "sha256:..." from inspect
  std::int64_t exit_code = 0;
  bool oom_killed = false;
};

class ContainerEngine {
 public:
  virtual ~ContainerEngine() = default;

  // Builds (or finds, on a content-hash hit) the image for `request`. Errors name what to fix:
  // the context or Dockerfile (not_found, invalid_argument, permission_denied), the failed build
  // step with dockerd's message (failed_precondition), dockerd (unavailable), the deadline.
  virtual asio::awaitable<Result<ImageResult>> build_image(
      const ImageRequest& request, std::function<void(const BuildProgress&)> on_progress) = 0;

  // Runs one container to its exit (DESIGN §6 lifecycle: create, wait registered, attach, start,
  // drain, exit code, inspect). A name conflict with a container carrying the same odd.run and
  // odd.job labels adopts it; any other conflict is already_exists. When the awaiting coroutine
  // is cancelled (deadline, fail-fast, cancel request) it returns cancelled promptly without
  // stopping anything: the caller always follows with stop_and_remove() or stop(). Does not
  // remove the container.
  virtual asio::awaitable<Result<ContainerExit>> run_container(const ContainerRequest& request,
                                                               ContainerCallbacks callbacks) = 0;

  // Stops the container (`grace`, then kill) and removes it with force. "No such container" is
  // success. Must be awaited from a coroutine that is not being cancelled: it carries its own
  // deadlines (grace plus a margin).
  virtual asio::awaitable<Status> stop_and_remove(const std::string& name_or_id,
                                                  std::chrono::seconds grace) = 0;

  // Stops the container (`grace`, then kill) and keeps it (a spec's `keep: true`).
  virtual asio::awaitable<Status> stop(const std::string& name_or_id,
                                       std::chrono::seconds grace) = 0;

  // Names of the containers (running or not) carrying label `key=value`, for sweeping what a run
  // or an earlier daemon left behind.
  virtual asio::awaitable<Result<std::vector<std::string>>> containers_with_label(
      const std::string& key, const std::string& value) = 0;
};

}  // namespace odd::daemon
