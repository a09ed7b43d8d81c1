#pragma once
// DockerClient: one method per Docker Engine API endpoint, typed requests and responses, errors
// mapped by engine/errors.hpp. Knows nothing of runs or jobs. Owns an HttpClient; negotiates the
// API version (the lower of dockerd's and kMaxApiVersion, at least kMinApiVersion) on first use.
// Not thread-safe: use from one strand. Every call honours cancellation of the awaiting coroutine.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "engine/api.hpp"
#include "engine/build_stream.hpp"
#include "engine/http_client.hpp"

namespace odd::engine {

struct DockerClientOptions {
  HttpClientOptions http;
  Millis call_timeout{60000};  // short calls: create, start, inspect, remove, ...
};

struct VersionInfo {
  std::string version;          // "20.10.24+dfsg1"
  std::string api_version;      // "1.41"
  std::string min_api_version;  // "1.12"
  std::string os;
  std::string arch;
  std::string kernel_version;
};

struct Resources {
  std::int64_t nano_cpus = 0;     // 0: unlimited
  std::int64_t memory_bytes = 0;  // 0: unlimited
  std::int64_t pids_limit = 0;    // 0: unlimited
};

struct LogConfig {
  std::string type;  // "" keeps dockerd's default
  std::map<std::string, std::string> config;
};

struct ContainerConfig {
  std::string name;  // "" lets dockerd choose
  std::string image;
  std::vector<std::string> cmd;
  std::optional<std::vector<std::string>> entrypoint;
  std::vector<std::string> env;  // "KEY=value"
  std::map<std::string, std::string> labels;
  std::string workdir;
  std::string user;
  std::vector<std::string> binds;            // "/host:/container[:ro]"
  std::map<std::string, std::string> tmpfs;  // container path → mount options ("size=1m,mode=0700")
  std::string network_mode;  // "" keeps dockerd's default; "none", "host", a network
  bool tty = false;
  bool open_stdin = false;
  bool auto_remove = false;
  Resources resources;
  LogConfig log_config;
};

struct ContainerState {
  std::string status;  // "created", "running", "exited", ...
  bool running = false;
  bool oom_killed = false;
  std::int64_t exit_code = 0;
  std::int64_t pid = 0;
  std::string error;
  std::string started_at;
  std::string finished_at;
};

struct ContainerInfo {
  std::string id;
  std::string name;      // without the leading '/'
  std::string image;     // the reference it was created from (Config.Image)
  std::string image_id;  // "sha256:..."
  bool tty = false;
  std::map<std::string, std::string> labels;
  ContainerState state;
  nlohmann::json raw;  // the whole inspect document
};

struct ContainerSummary {
  std::string id;
  std::vector<std::string> names;
  std::string image;
  std::string state;
  std::string status;
  std::map<std::string, std::string> labels;
};

struct ListContainersOptions {
  bool all = true;
  std::vector<std::string> label_filters;  // "key" or "key=value"
  std::vector<std::string> name_filters;
};

enum class WaitCondition { kNotRunning, kNextExit, kRemoved };

struct WaitResult {
  std::int64_t status_code = 0;
  std::string error;  // dockerd's Error.Message, if any
};

// A wait registered with dockerd (its response headers already read) whose result comes later:
// lets callers wait before start without racing a container that exits at once.
class PendingWait {
 public:
  virtual ~PendingWait() = default;
  // Waits for the condition, with no deadline of its own; call once. unavailable when the
  // connection breaks first (dockerd stopped), cancelled when the caller is.
  virtual asio::awaitable<Result<WaitResult>> result() = 0;
};

struct LogsOptions {
  bool follow = false;
  bool stdout_stream = true;
  bool stderr_stream = true;
  bool timestamps = false;
  std::optional<std::string> since;  // unix seconds with optional fraction, as dockerd takes
  std::optional<std::string> until;
  std::optional<std::string> tail;  // "all" or a count
};

struct AttachOptions {
  bool stdin_stream = false;
  bool stdout_stream = true;
  bool stderr_stream = true;
  bool stream = true;
  bool logs = false;
};

struct ExecConfig {
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string workdir;
  std::string user;
  bool tty = false;
  bool attach_stdin = false;
  bool attach_stdout = true;
  bool attach_stderr = true;
};

struct ExecInfo {
  bool running = false;
  std::int64_t exit_code = 0;
  std::int64_t pid = 0;
  std::string container_id;
};

struct ImageInfo {
  std::string id;  // "sha256:..."
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  std::int64_t size = 0;
  std::string created;
  std::map<std::string, std::string> labels;
  nlohmann::json raw;
};

struct ImageSummary {
  std::string id;
  std::vector<std::string> repo_tags;
  std::int64_t created = 0;  // unix seconds
  std::int64_t size = 0;
  std::map<std::string, std::string> labels;
};

struct ListImagesOptions {
  bool all = false;
  std::vector<std::string> reference_filters;  // "repo", "repo:tag"
  std::vector<std::string> label_filters;
};

struct BuildOptions {
  std::string tag;                        // "repository:tag" given to the built image
  std::string dockerfile = "Dockerfile";  // path inside the context
  std::map<std::string, std::string> build_args;
  std::string target;
  std::string platform;
  std::map<std::string, std::string> labels;
  std::string network_mode;  // for RUN steps: "none" or "host" where dockerd has no bridge
  bool no_cache = false;
  bool pull = false;
  bool buildkit = true;  // POST /build?version=2; false for the classic builder
};

struct PullProgress {
  std::string id;
  std::string status;
  std::int64_t current = 0;
  std::int64_t total = 0;
};

struct Event {
  std::string type;    // "container", "image", ...
  std::string action;  // "create", "start", "die", ...
  std::string actor_id;
  std::map<std::string, std::string> attributes;
  std::int64_t time_nano = 0;
  nlohmann::json raw;
};

struct EventsOptions {
  std::map<std::string, std::vector<std::string>> filters;  // {"type": ["container"], ...}
  std::optional<std::int64_t> since_nano;  // resume point: events at or after this time
  std::optional<std::int64_t> until_nano;  // the feed ends after this time
  int reconnect_attempts = 5;              // per break, before next() gives up
  Millis reconnect_backoff{100};           // before the first attempt; doubles each time
};

// A live event feed that reconnects after a broken connection, resuming from the last event
// seen (never delivering one twice). Must not outlive the DockerClient that opened it.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // The next event; std::nullopt once the feed has ended (until_nano reached, or close()).
  // unavailable when dockerd cannot be reached again within the reconnect budget; a mapped
  // HTTP error when dockerd refuses the resumed request; cancelled when the caller is.
  virtual asio::awaitable<Result<std::optional<Event>>> next() = 0;
  virtual void close() = 0;
};

// Errors of every method: transport failures as engine/errors.hpp maps them (unavailable,
// deadline_exceeded, cancelled, permission_denied), dockerd's refusals by status_from_http
// (not_found, already_exists, invalid_argument, ...), failed_precondition from negotiation. Each
// message begins with the operation and its object: "start container 3f2a1b4c5d6e: dockerd: ...".
// Arguments are read when the returned awaitable runs: co_await it in the same full-expression.
class DockerClient {
 public:
  DockerClient(asio::any_io_executor executor, std::unique_ptr<Dialer> dialer,
               DockerClientOptions options = {});
  ~DockerClient();

  // A client for a DOCKER_HOST-style address ("unix:///var/run/docker.sock", "tcp://h:p");
  // invalid_argument for an address parse_endpoint() refuses. Nothing is dialled yet.
  static Result<std::unique_ptr<DockerClient>> for_host(asio::any_io_executor executor,
                                                        std::string_view docker_host,
                                                        DockerClientOptions options = {});

  // Reads /version and fixes the API version used from then on (see negotiate_api_version()).
  // failed_precondition when dockerd's API is older than kMinApiVersion. Called by every method
  // when not done yet; version() and ping() are unversioned and never negotiate.
  asio::awaitable<Status> negotiate();
  const std::string& api_version() const;  // "" before negotiate()
  const std::string& target_name() const;
  HttpClient& http();

  asio::awaitable<Status> ping();
  asio::awaitable<Result<VersionInfo>> version();
  asio::awaitable<Result<nlohmann::json>> info();

  // Containers. `id` is an id or a name.
  // Returns the new id; already_exists when the name is taken. dockerd's warnings are logged.
  asio::awaitable<Result<std::string>> create_container(const ContainerConfig& config);
  asio::awaitable<Status> start_container(const std::string& id);  // already started is ok
  // Registers a wait (its response headers read) on a connection of its own; call before start.
  asio::awaitable<Result<std::unique_ptr<PendingWait>>> begin_wait(const std::string& id,
                                                                   WaitCondition condition);
  asio::awaitable<Result<WaitResult>> wait_container(const std::string& id,
                                                     WaitCondition condition);
  // Stops with `grace` before dockerd kills; the HTTP deadline is grace plus a margin.
  asio::awaitable<Status> stop_container(const std::string& id, std::chrono::seconds grace);
  // Already stopped is ok for stop; kill of a stopped container is failed_precondition.
  asio::awaitable<Status> kill_container(const std::string& id, std::string_view signal = "KILL");
  // not_found when there is no such container (cleanup treats that as success).
  asio::awaitable<Status> remove_container(const std::string& id, bool force, bool volumes);
  asio::awaitable<Result<ContainerInfo>> inspect_container(const std::string& id);
  asio::awaitable<Result<std::vector<ContainerSummary>>> list_containers(
      const ListContainersOptions& options);
  // The raw log stream: multiplexed unless the container has a TTY (see Demuxer).
  asio::awaitable<Result<std::unique_ptr<BodyReader>>> container_logs(const std::string& id,
                                                                      const LogsOptions& options);
  // Hijacked attach: multiplexed output unless the container has a TTY.
  asio::awaitable<Result<std::unique_ptr<RawStream>>> attach_container(
      const std::string& id, const AttachOptions& options);
  // A tar stream of `path` inside the container.
  asio::awaitable<Result<std::unique_ptr<BodyReader>>> get_archive(const std::string& id,
                                                                   const std::string& path);
  // Extracts the tar `archive` into directory `path` inside the container.
  asio::awaitable<Status> put_archive(const std::string& id, const std::string& path,
                                      std::string archive);

  // Exec.
  asio::awaitable<Result<std::string>> create_exec(const std::string& container_id,
                                                   const ExecConfig& config);
  // Starts the exec attached: its output (multiplexed unless tty) until the command exits.
  asio::awaitable<Result<std::unique_ptr<RawStream>>> start_exec(const std::string& exec_id,
                                                                 bool tty);
  asio::awaitable<Result<ExecInfo>> inspect_exec(const std::string& exec_id);

  // Images.
  asio::awaitable<Result<ImageInfo>> inspect_image(const std::string& name);
  asio::awaitable<Result<std::vector<ImageSummary>>> list_images(const ListImagesOptions& options);
  asio::awaitable<Status> remove_image(const std::string& name, bool force, bool prune_parents);
  asio::awaitable<Status> tag_image(const std::string& source, const std::string& repository,
                                    const std::string& tag);
  // Streams the build context tar from `context` to POST /build (chunked) and feeds every progress
  // line to `parser`; returns the image id. failed_precondition with dockerd's message and the
  // step when the build fails, invalid_argument for options dockerd rejects, deadline_exceeded
  // past `timeout`, or the context source's own error.
  asio::awaitable<Result<std::string>> build_image(const BuildOptions& options, BodySource context,
                                                   BuildStreamParser& parser, Millis timeout);
  // Pulls `image` (with its tag or digest); progress reported as it arrives. dockerd's stream
  // errors ("pull access denied", DNS failures) become the returned Status; bounded by `timeout`.
  asio::awaitable<Status> pull_image(const std::string& image,
                                     std::function<void(const PullProgress&)> on_progress,
                                     Millis timeout);

  // Events.
  asio::awaitable<Result<std::unique_ptr<EventStream>>> events(const EventsOptions& options);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace odd::engine
