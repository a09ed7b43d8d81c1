#include "engine/docker_client.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <set>
#include <tuple>
#include <utility>
#include <variant>

#include "engine/errors.hpp"

namespace odd::engine {

namespace {

using nlohmann::json;

// Error bodies and wait results are a few hundred bytes; a cap keeps a confused peer from
// making us buffer a stream.
constexpr std::size_t kMaxSmallBody = 64 * 1024;
// dockerd answers a stop only after the grace period and the kill that may follow it.
constexpr Millis kStopMargin{15000};
constexpr std::size_t kReadChunk = 16 * 1024;

// ---- JSON access that tolerates dockerd's nulls, missing keys and other versions' shapes ----

const json* member(const json& doc, const char* key) {
  if (!doc.is_object()) return nullptr;
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string get_string(const json& doc, const char* key) {
  const json* value = member(doc, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

std::int64_t get_int(const json& doc, const char* key) {
  const json* value = member(doc, key);
  if (value == nullptr || !value->is_number()) return 0;
  if (value->is_number_float()) return static_cast<std::int64_t>(value->get<double>());
  return value->get<std::int64_t>();
}

bool get_bool(const json& doc, const char* key) {
  const json* value = member(doc, key);
  return value != nullptr && value->is_boolean() && value->get<bool>();
}

std::vector<std::string> get_strings(const json& doc, const char* key) {
  std::vector<std::string> out;
  const json* value = member(doc, key);
  if (value == nullptr || !value->is_array()) return out;
  for (const auto& item : *value) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> get_string_map(const json& doc, const char* key) {
  std::map<std::string, std::string> out;
  const json* value = member(doc, key);
  if (value == nullptr || !value->is_object()) return out;
  for (const auto& [k, v] : value->items()) {
    if (v.is_string()) out.emplace(k, v.get<std::string>());
  }
  return out;
}

const json& get_object(const json& doc, const char* key) {
  static const json kEmpty = json::object();
  const json* value = member(doc, key);
  return value != nullptr && value->is_object() ? *value : kEmpty;
}

Result<json> parse_json(std::string_view body, std::string_view context) {
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    return internal_error(std::string(context) + ": dockerd sent a response that is not JSON");
  }
  return doc;
}

// ---- Response documents ----

VersionInfo parse_version_info(const json& doc) {
  VersionInfo info;
  info.version = get_string(doc, "Version");
  info.api_version = get_string(doc, "ApiVersion");
  info.min_api_version = get_string(doc, "MinAPIVersion");
  info.os = get_string(doc, "Os");
  info.arch = get_string(doc, "Arch");
  info.kernel_version = get_string(doc, "KernelVersion");
  return info;
}

ContainerInfo parse_container_info(json doc) {
  ContainerInfo info;
  info.id = get_string(doc, "Id");
  info.name = get_string(doc, "Name");
  if (info.name.starts_with('/')) info.name.erase(0, 1);
  info.image_id = get_string(doc, "Image");
  const json& config = get_object(doc, "Config");
  info.image = get_string(config, "Image");
  info.tty = get_bool(config, "Tty");
  info.labels = get_string_map(config, "Labels");
  const json& state = get_object(doc, "State");
  info.state.status = get_string(state, "Status");
  info.state.running = get_bool(state, "Running");
  info.state.oom_killed = get_bool(state, "OOMKilled");
  info.state.exit_code = get_int(state, "ExitCode");
  info.state.pid = get_int(state, "Pid");
  info.state.error = get_string(state, "Error");
  info.state.started_at = get_string(state, "StartedAt");
  info.state.finished_at = get_string(state, "FinishedAt");
  info.raw = std::move(doc);
  return info;
}

ContainerSummary parse_container_summary(const json& doc) {
  ContainerSummary summary;
  summary.id = get_string(doc, "Id");
  summary.names = get_strings(doc, "Names");
  summary.image = get_string(doc, "Image");
  summary.state = get_string(doc, "State");
  summary.status = get_string(doc, "Status");
  summary.labels = get_string_map(doc, "Labels");
  return summary;
}

ExecInfo parse_exec_info(const json& doc) {
  ExecInfo info;
  info.running = get_bool(doc, "Running");
  info.exit_code = get_int(doc, "ExitCode");  // null while running
  info.pid = get_int(doc, "Pid");
  info.container_id = get_string(doc, "ContainerID");
  return info;
}

ImageInfo parse_image_info(json doc) {
  ImageInfo info;
  info.id = get_string(doc, "Id");
  info.repo_tags = get_strings(doc, "RepoTags");
  info.repo_digests = get_strings(doc, "RepoDigests");
  info.size = get_int(doc, "Size");
  info.created = get_string(doc, "Created");
  info.labels = get_string_map(get_object(doc, "Config"), "Labels");
  info.raw = std::move(doc);
  return info;
}

ImageSummary parse_image_summary(const json& doc) {
  ImageSummary summary;
  summary.id = get_string(doc, "Id");
  summary.repo_tags = get_strings(doc, "RepoTags");
  summary.created = get_int(doc, "Created");
  summary.size = get_int(doc, "Size");
  summary.labels = get_string_map(doc, "Labels");
  return summary;
}

WaitResult parse_wait_result(const json& doc) {
  WaitResult result;
  result.status_code = get_int(doc, "StatusCode");
  result.error = get_string(get_object(doc, "Error"), "Message");
  return result;
}

Event parse_event(json doc) {
  Event event;
  event.type = get_string(doc, "Type");
  event.action = get_string(doc, "Action");
  const json& actor = get_object(doc, "Actor");
  event.actor_id = get_string(actor, "ID");
  event.attributes = get_string_map(actor, "Attributes");
  event.time_nano = get_int(doc, "timeNano");
  if (event.time_nano == 0) event.time_nano = get_int(doc, "time") * 1'000'000'000;
  event.raw = std::move(doc);
  return event;
}

// A progress line's `error`/`errorDetail` message, or "" for an ordinary progress line.
std::string stream_error_message(const json& doc) {
  std::string message = get_string(get_object(doc, "errorDetail"), "message");
  if (message.empty()) message = get_string(doc, "error");
  return message;
}

PullProgress parse_pull_progress(const json& doc) {
  PullProgress progress;
  progress.id = get_string(doc, "id");
  progress.status = get_string(doc, "status");
  const json& detail = get_object(doc, "progressDetail");
  progress.current = get_int(detail, "current");
  progress.total = get_int(detail, "total");
  return progress;
}

// ---- Request documents ----

json container_create_body(const ContainerConfig& config) {
  json body = {
      {"Image", config.image},
      {"Tty", config.tty},
      {"OpenStdin", config.open_stdin},
      {"StdinOnce", false},
      {"AttachStdin", config.open_stdin},
      {"AttachStdout", true},
      {"AttachStderr", true},
  };
  // Empty Cmd and a missing Entrypoint keep the image's; an empty Entrypoint clears it.
  if (!config.cmd.empty()) body["Cmd"] = config.cmd;
  if (config.entrypoint) body["Entrypoint"] = *config.entrypoint;
  if (!config.env.empty()) body["Env"] = config.env;
  if (!config.labels.empty()) body["Labels"] = config.labels;
  if (!config.workdir.empty()) body["WorkingDir"] = config.workdir;
  if (!config.user.empty()) body["User"] = config.user;

  json host = {{"AutoRemove", config.auto_remove}};
  if (!config.binds.empty()) host["Binds"] = config.binds;
  if (!config.tmpfs.empty()) host["Tmpfs"] = config.tmpfs;
  if (!config.network_mode.empty()) host["NetworkMode"] = config.network_mode;
  if (config.resources.nano_cpus > 0) host["NanoCpus"] = config.resources.nano_cpus;
  if (config.resources.memory_bytes > 0) host["Memory"] = config.resources.memory_bytes;
  if (config.resources.pids_limit > 0) host["PidsLimit"] = config.resources.pids_limit;
  if (!config.log_config.type.empty()) {
    host["LogConfig"] = {{"Type", config.log_config.type}, {"Config", config.log_config.config}};
  }
  body["HostConfig"] = std::move(host);
  return body;
}

json exec_create_body(const ExecConfig& config) {
  json body = {
      {"AttachStdin", config.attach_stdin},
      {"AttachStdout", config.attach_stdout},
      {"AttachStderr", config.attach_stderr},
      {"Tty", config.tty},
      {"Cmd", config.cmd},
  };
  if (!config.env.empty()) body["Env"] = config.env;
  if (!config.workdir.empty()) body["WorkingDir"] = config.workdir;
  if (!config.user.empty()) body["User"] = config.user;
  return body;
}

std::string_view wait_condition_name(WaitCondition condition) {
  switch (condition) {
    case WaitCondition::kNotRunning:
      return "not-running";
    case WaitCondition::kNextExit:
      return "next-exit";
    case WaitCondition::kRemoved:
      return "removed";
  }
  return "not-running";
}

// ---- HTTP plumbing ----

HttpRequest make_request(std::string method, std::string target) {
  HttpRequest request;
  request.method = std::move(method);
  request.target = std::move(target);
  return request;
}

HttpRequest make_json_request(std::string method, std::string target, const json& body) {
  HttpRequest request = make_request(std::move(method), std::move(target));
  request.body = body.dump();
  request.content_type = "application/json";
  return request;
}

bool is_success(unsigned status) { return status >= 200 && status < 300; }

Status check_status(const HttpResponse& response, std::string_view context) {
  if (is_success(response.status)) return ok_status();
  return status_from_http(response.status, response.body, context);
}

std::string describe_duration(Millis duration) {
  if (duration.count() % 1000 == 0) return std::to_string(duration.count() / 1000) + "s";
  return std::to_string(duration.count()) + "ms";
}

// Reads a body to its end, keeping at most `limit` bytes.
asio::awaitable<Result<std::string>> read_small_body(BodyReader& reader, std::size_t limit) {
  std::string body;
  std::array<char, kReadChunk> chunk;
  for (;;) {
    auto n = co_await reader.read_some(asio::buffer(chunk));
    if (!n) co_return n.error();
    if (*n == 0) co_return body;
    body.append(chunk.data(), std::min(*n, limit - body.size()));
  }
}

class DockerPendingWait final : public PendingWait {
 public:
  DockerPendingWait(std::unique_ptr<BodyReader> reader, std::string context)
      : reader_(std::move(reader)), context_(std::move(context)) {}

  asio::awaitable<Result<WaitResult>> result() override {
    if (!reader_) co_return failed_precondition(context_ + ": the result was already read");
    std::unique_ptr<BodyReader> reader = std::move(reader_);
    auto body = co_await read_small_body(*reader, kMaxSmallBody);
    reader->close();
    if (!body) co_return body.error().with_context(context_);
    if (body->find_first_not_of(" \r\n") == std::string::npos) {
      co_return unavailable(context_ + ": dockerd ended the wait without a result");
    }
    auto doc = parse_json(*body, context_);
    if (!doc) co_return doc.error();
    co_return parse_wait_result(*doc);
  }

 private:
  std::unique_ptr<BodyReader> reader_;
  std::string context_;
};

// Opens the events feed from a resume point (none: live only).
using EventsOpener = std::function<asio::awaitable<Result<std::unique_ptr<BodyReader>>>(
    std::optional<std::int64_t>)>;

class DockerEventStream final : public EventStream {
 public:
  DockerEventStream(asio::any_io_executor executor, EventsOptions options, EventsOpener open,
                    std::unique_ptr<BodyReader> reader, std::int64_t opened_at_nano)
      : executor_(std::move(executor)),
        options_(std::move(options)),
        open_(std::move(open)),
        reader_(std::move(reader)),
        opened_at_nano_(opened_at_nano) {}

  ~DockerEventStream() override { close(); }

  asio::awaitable<Result<std::optional<Event>>> next() override {
    for (;;) {
      if (closed_) co_return std::nullopt;
      while (auto line = lines_.next()) {
        std::optional<Event> event = take(*line);
        if (event) co_return std::move(event);
      }
      if (!reader_) {
        if (ended_) co_return std::nullopt;
        if (Status s = co_await reconnect(); !s.ok()) co_return s;
        continue;
      }
      auto n = co_await reader_->read_some(asio::buffer(chunk_));
      if (n && *n > 0) {
        if (Status s = lines_.feed(std::string_view(chunk_.data(), *n)); !s.ok()) {
          co_return internal_error("follow dockerd events: " + s.message());
        }
        continue;
      }
      if (closed_) co_return std::nullopt;
      if (!n && n.error().code() == Code::kCancelled) {
        drop_connection();
        co_return n.error();
      }
      if (n) {
        // dockerd ends the feed cleanly at `until`, or when it shuts down.
        if (options_.until_nano && now_nano() >= *options_.until_nano) ended_ = true;
      } else {
        spdlog::info("follow dockerd events: {}; resuming", n.error().message());
      }
      drop_connection();
    }
  }

  void close() override {
    closed_ = true;
    if (reader_) reader_->close();
  }

 private:
  static std::int64_t now_nano() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // A partial line dies with its connection: the event is sent again after the resume.
  void drop_connection() {
    if (reader_) reader_->close();
    reader_.reset();
    lines_ = JsonLineBuffer();
  }

  // The event on `line`, or nullopt when the line is blank, unreadable or already delivered.
  std::optional<Event> take(const std::string& line) {
    if (line.find_first_not_of(" \t") == std::string::npos) return std::nullopt;
    auto doc = json::parse(line, nullptr, false);
    if (!doc.is_object()) {
      spdlog::warn("follow dockerd events: skipping an unreadable event line");
      return std::nullopt;
    }
    Event event = parse_event(std::move(doc));
    // `since` is inclusive, so a resume replays the events that share the last timestamp.
    std::string key = event.type + '\0' + event.action + '\0' + event.actor_id;
    if (event.time_nano > last_time_nano_) {
      last_time_nano_ = event.time_nano;
      seen_at_last_.clear();
    }
    if (event.time_nano == last_time_nano_ && !seen_at_last_.insert(key).second) {
      return std::nullopt;
    }
    failures_ = 0;
    return event;
  }

  std::optional<std::int64_t> resume_point() const {
    if (last_time_nano_ > 0) return last_time_nano_;
    if (options_.since_nano) return options_.since_nano;
    // Nothing seen yet on a live feed: resume from when it was opened, so nothing in the gap is
    // lost (dockerd's clock is assumed close to ours).
    return opened_at_nano_;
  }

  asio::awaitable<Status> reconnect() {
    Status last = unavailable("follow dockerd events: connection lost");
    asio::steady_timer timer(executor_);
    Millis delay = options_.reconnect_backoff;
    while (failures_ < options_.reconnect_attempts) {
      ++failures_;
      timer.expires_after(delay);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return cancelled("follow dockerd events: cancelled");
      if (closed_) co_return ok_status();
      delay *= 2;
      auto opened = co_await open_(resume_point());
      if (opened) {
        reader_ = std::move(*opened);
        co_return ok_status();
      }
      last = opened.error();
      if (!last.retryable()) co_return last;
    }
    co_return unavailable(last.message() + " (gave up after " + std::to_string(failures_) +
                          " reconnect attempts)");
  }

  asio::any_io_executor executor_;
  EventsOptions options_;
  EventsOpener open_;
  std::unique_ptr<BodyReader> reader_;
  std::int64_t opened_at_nano_;
  JsonLineBuffer lines_;
  std::array<char, kReadChunk> chunk_{};
  std::int64_t last_time_nano_ = 0;
  std::set<std::string> seen_at_last_;
  int failures_ = 0;
  bool closed_ = false;
  bool ended_ = false;
};

}  // namespace

struct DockerClient::Impl {
  Impl(asio::any_io_executor ex, std::unique_ptr<Dialer> dialer, DockerClientOptions opts)
      : executor(ex), options(opts), http(std::move(ex), std::move(dialer), opts.http) {}

  std::string path(std::string_view p) const { return versioned_path(api_version, p); }

  // A short call on a pooled connection; transport failures carry `context`.
  asio::awaitable<Result<HttpResponse>> call(HttpRequest request, std::string context,
                                             std::optional<Millis> timeout = std::nullopt) {
    auto response =
        co_await http.request(std::move(request), timeout.value_or(options.call_timeout));
    if (!response) co_return response.error().with_context(context);
    co_return std::move(*response);
  }

  // A short call whose 2xx answer is a JSON document.
  asio::awaitable<Result<json>> call_json(HttpRequest request, std::string context) {
    auto response = co_await call(std::move(request), context);
    if (!response) co_return response.error();
    if (Status s = check_status(*response, context); !s.ok()) co_return s;
    co_return parse_json(response->body, context);
  }

  // A call whose answer is read as it arrives, on a connection of its own.
  asio::awaitable<Result<std::unique_ptr<BodyReader>>> open_stream(HttpRequest request,
                                                                   std::string context,
                                                                   Millis header_timeout) {
    auto reader = co_await http.stream(std::move(request), header_timeout);
    if (!reader) co_return reader.error().with_context(context);
    if (is_success((*reader)->status())) co_return std::move(*reader);
    unsigned status = (*reader)->status();
    auto body = co_await read_small_body(**reader, kMaxSmallBody);
    (*reader)->close();
    if (!body) co_return body.error().with_context(context);
    co_return status_from_http(status, *body, context);
  }

  // A hijacked exchange (attach, exec start): raw bytes both ways once dockerd upgrades.
  asio::awaitable<Result<std::unique_ptr<RawStream>>> open_raw(HttpRequest request,
                                                               std::string context) {
    auto hijacked = co_await http.hijack(std::move(request), options.call_timeout);
    if (!hijacked) co_return hijacked.error().with_context(context);
    unsigned status = hijacked->response.status;
    if (status != 101 && status != 200) {
      co_return status_from_http(status, hijacked->response.body, context);
    }
    if (!hijacked->stream) co_return internal_error(context + ": upgraded without a stream");
    co_return std::move(hijacked->stream);
  }

  asio::awaitable<Result<std::unique_ptr<BodyReader>>> open_events(
      std::map<std::string, std::vector<std::string>> filters, std::optional<std::int64_t> since,
      std::optional<std::int64_t> until) {
    Query query;
    if (!filters.empty()) query.add("filters", filters_json(filters));
    if (since) query.add("since", format_unix_nanos(*since));
    if (until) query.add("until", format_unix_nanos(*until));
    co_return co_await open_stream(make_request("GET", path("/events" + query.to_string())),
                                   "follow dockerd events", options.call_timeout);
  }

  // Reads pull progress until dockerd ends the stream; `reader` stays with the caller so a
  // timeout can close it.
  asio::awaitable<Status> pull(HttpRequest request, std::string context,
                               std::function<void(const PullProgress&)> on_progress,
                               std::unique_ptr<BodyReader>& reader, Millis header_timeout) {
    auto opened = co_await http.stream(std::move(request), header_timeout);
    if (!opened) co_return opened.error().with_context(context);
    reader = std::move(*opened);
    if (!is_success(reader->status())) {
      // dockerd answers with an HTTP status when the pull fails before any progress was sent.
      unsigned status = reader->status();
      auto body = co_await read_small_body(*reader, kMaxSmallBody);
      if (!body) co_return body.error().with_context(context);
      Status mapped = status_from_http(status, *body, context);
      if (mapped.code() != Code::kInternal) co_return mapped;
      // A 500 here is the registry's failure, not dockerd's: classify it by dockerd's words.
      json doc = json::parse(*body, nullptr, false);
      std::string text = doc.is_object() ? get_string(doc, "message") : *body;
      co_return Status(status_from_stream_error(text, "").code(), mapped.message());
    }

    auto handle = [&](const std::string& line) -> Status {
      if (line.find_first_not_of(" \t") == std::string::npos) return ok_status();
      json doc = json::parse(line, nullptr, false);
      if (!doc.is_object()) {
        spdlog::warn("{}: skipping an unreadable progress line", context);
        return ok_status();
      }
      if (std::string error = stream_error_message(doc); !error.empty()) {
        return status_from_stream_error(error, context);
      }
      if (on_progress) on_progress(parse_pull_progress(doc));
      return ok_status();
    };

    JsonLineBuffer lines;
    std::array<char, kReadChunk> chunk;
    for (;;) {
      auto n = co_await reader->read_some(asio::buffer(chunk));
      if (!n) co_return n.error().with_context(context);
      if (*n == 0) break;
      if (Status s = lines.feed(std::string_view(chunk.data(), *n)); !s.ok()) {
        co_return internal_error(context + ": " + s.message());
      }
      while (auto line = lines.next()) {
        if (Status s = handle(*line); !s.ok()) co_return s;
      }
    }
    if (auto line = lines.finish()) co_return handle(*line);
    co_return ok_status();
  }

  // Sends the context and reads the build's progress to its end; `reader` stays with the caller
  // so a timeout can close it.
  asio::awaitable<Result<std::string>> build(HttpRequest request, BodySource context,
                                             BuildStreamParser& parser,
                                             std::unique_ptr<BodyReader>& reader, Millis timeout,
                                             const std::string& what) {
    auto opened = co_await http.upload(std::move(request), std::move(context), timeout);
    if (!opened) co_return opened.error().with_context(what);
    reader = std::move(*opened);
    if (!is_success(reader->status())) {
      unsigned status = reader->status();
      auto body = co_await read_small_body(*reader, kMaxSmallBody);
      if (!body) co_return body.error().with_context(what);
      co_return status_from_http(status, *body, what);
    }
    JsonLineBuffer lines;
    std::array<char, kReadChunk> chunk;
    Status failed;
    auto consume = [&](const std::string& line) {
      Status s = parser.consume_line(line);
      if (!s.ok() && failed.ok()) failed = s.with_context(what);
    };
    for (;;) {
      auto n = co_await reader->read_some(asio::buffer(chunk));
      if (!n) co_return n.error().with_context(what);
      if (*n == 0) break;
      if (Status s = lines.feed(std::string_view(chunk.data(), *n)); !s.ok()) {
        co_return internal_error(what + ": " + s.message());
      }
      while (auto line = lines.next()) consume(*line);
    }
    if (auto line = lines.finish()) consume(*line);
    if (!failed.ok()) co_return failed;
    if (parser.image_id().empty()) {
      co_return internal_error(what + ": dockerd ended the build without naming an image");
    }
    co_return parser.image_id();
  }

  asio::any_io_executor executor;
  DockerClientOptions options;
  HttpClient http;
  std::string api_version;
};

DockerClient::DockerClient(asio::any_io_executor executor, std::unique_ptr<Dialer> dialer,
                           DockerClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(dialer), std::move(options))) {}

DockerClient::~DockerClient() = default;

Result<std::unique_ptr<DockerClient>> DockerClient::for_host(asio::any_io_executor executor,
                                                             std::string_view docker_host,
                                                             DockerClientOptions options) {
  auto endpoint = parse_endpoint(docker_host);
  if (!endpoint) return endpoint.error();
  auto dialer = make_dialer(executor, std::move(*endpoint));
  return std::make_unique<DockerClient>(std::move(executor), std::move(dialer), std::move(options));
}

const std::string& DockerClient::api_version() const { return impl_->api_version; }
const std::string& DockerClient::target_name() const { return impl_->http.target_name(); }
HttpClient& DockerClient::http() { return impl_->http; }

asio::awaitable<Status> DockerClient::negotiate() {
  if (!impl_->api_version.empty()) co_return ok_status();
  auto info = co_await version();
  if (!info) co_return info.error();
  auto chosen = negotiate_api_version(info->api_version, info->min_api_version, target_name());
  if (!chosen) co_return chosen.error();
  spdlog::debug("{}: dockerd {} speaks Engine API {}; using {}", target_name(), info->version,
                info->api_version, *chosen);
  impl_->api_version = std::move(*chosen);
  co_return ok_status();
}

asio::awaitable<Status> DockerClient::ping() {
  std::string context = "ping dockerd";
  auto response = co_await impl_->call(make_request("GET", "/_ping"), context);
  if (!response) co_return response.error();
  co_return check_status(*response, context);
}

asio::awaitable<Result<VersionInfo>> DockerClient::version() {
  auto doc = co_await impl_->call_json(make_request("GET", "/version"), "read dockerd version");
  if (!doc) co_return doc.error();
  co_return parse_version_info(*doc);
}

asio::awaitable<Result<nlohmann::json>> DockerClient::info() {
  std::string context = "read dockerd info";
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  co_return co_await impl_->call_json(make_request("GET", impl_->path("/info")), context);
}

// ---- Containers ----

asio::awaitable<Result<std::string>> DockerClient::create_container(const ContainerConfig& config) {
  std::string context = config.name.empty() ? "create container from image " + config.image
                                            : "create container " + config.name;
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  if (!config.name.empty()) query.add("name", config.name);
  auto doc = co_await impl_->call_json(
      make_json_request("POST", impl_->path("/containers/create" + query.to_string()),
                        container_create_body(config)),
      context);
  if (!doc) co_return doc.error();
  for (const auto& warning : get_strings(*doc, "Warnings")) {
    spdlog::warn("{}: dockerd: {}", context, warning);
  }
  std::string id = get_string(*doc, "Id");
  if (id.empty()) co_return internal_error(context + ": dockerd returned no container id");
  co_return id;
}

asio::awaitable<Status> DockerClient::start_container(const std::string& id) {
  std::string context = "start container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  auto response = co_await impl_->call(
      make_request("POST", impl_->path("/containers/" + encode_path_segment(id) + "/start")),
      context);
  if (!response) co_return response.error();
  if (response->status == 304) co_return ok_status();  // already started
  co_return check_status(*response, context);
}

asio::awaitable<Result<std::unique_ptr<PendingWait>>> DockerClient::begin_wait(
    const std::string& id, WaitCondition condition) {
  std::string context = "wait for container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add("condition", wait_condition_name(condition));
  auto reader = co_await impl_->open_stream(
      make_request("POST", impl_->path("/containers/" + encode_path_segment(id) + "/wait" +
                                       query.to_string())),
      context, impl_->options.call_timeout);
  if (!reader) co_return reader.error();
  co_return std::make_unique<DockerPendingWait>(std::move(*reader), std::move(context));
}

asio::awaitable<Result<WaitResult>> DockerClient::wait_container(const std::string& id,
                                                                 WaitCondition condition) {
  auto pending = co_await begin_wait(id, condition);
  if (!pending) co_return pending.error();
  co_return co_await (*pending)->result();
}

asio::awaitable<Status> DockerClient::stop_container(const std::string& id,
                                                     std::chrono::seconds grace) {
  std::string context = "stop container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add_int("t", grace.count());
  auto response = co_await impl_->call(
      make_request("POST", impl_->path("/containers/" + encode_path_segment(id) + "/stop" +
                                       query.to_string())),
      context, std::chrono::duration_cast<Millis>(grace) + kStopMargin);
  if (!response) co_return response.error();
  if (response->status == 304) co_return ok_status();  // already stopped
  co_return check_status(*response, context);
}

asio::awaitable<Status> DockerClient::kill_container(const std::string& id,
                                                     std::string_view signal) {
  std::string context = "kill container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add("signal", signal);
  auto response = co_await impl_->call(
      make_request("POST", impl_->path("/containers/" + encode_path_segment(id) + "/kill" +
                                       query.to_string())),
      context);
  if (!response) co_return response.error();
  co_return check_status(*response, context);
}

asio::awaitable<Status> DockerClient::remove_container(const std::string& id, bool force,
                                                       bool volumes) {
  std::string context = "remove container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add_bool("force", force).add_bool("v", volumes);
  auto response = co_await impl_->call(
      make_request("DELETE",
                   impl_->path("/containers/" + encode_path_segment(id) + query.to_string())),
      context);
  if (!response) co_return response.error();
  co_return check_status(*response, context);
}

asio::awaitable<Result<ContainerInfo>> DockerClient::inspect_container(const std::string& id) {
  std::string context = "inspect container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  auto doc = co_await impl_->call_json(
      make_request("GET", impl_->path("/containers/" + encode_path_segment(id) + "/json")),
      context);
  if (!doc) co_return doc.error();
  co_return parse_container_info(std::move(*doc));
}

asio::awaitable<Result<std::vector<ContainerSummary>>> DockerClient::list_containers(
    const ListContainersOptions& options) {
  std::string context = "list containers";
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add_bool("all", options.all);
  std::map<std::string, std::vector<std::string>> filters{{"label", options.label_filters},
                                                          {"name", options.name_filters}};
  if (std::string f = filters_json(filters); f != "{}") query.add("filters", f);
  auto doc = co_await impl_->call_json(
      make_request("GET", impl_->path("/containers/json" + query.to_string())), context);
  if (!doc) co_return doc.error();
  std::vector<ContainerSummary> out;
  if (doc->is_array()) {
    for (const auto& item : *doc) out.push_back(parse_container_summary(item));
  }
  co_return out;
}

asio::awaitable<Result<std::unique_ptr<BodyReader>>> DockerClient::container_logs(
    const std::string& id, const LogsOptions& options) {
  std::string context = "read logs of container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add_bool("follow", options.follow)
      .add_bool("stdout", options.stdout_stream)
      .add_bool("stderr", options.stderr_stream)
      .add_bool("timestamps", options.timestamps);
  if (options.since) query.add("since", *options.since);
  if (options.until) query.add("until", *options.until);
  if (options.tail) query.add("tail", *options.tail);
  co_return co_await impl_->open_stream(
      make_request("GET", impl_->path("/containers/" + encode_path_segment(id) + "/logs" +
                                      query.to_string())),
      context, impl_->options.call_timeout);
}

asio::awaitable<Result<std::unique_ptr<RawStream>>> DockerClient::attach_container(
    const std::string& id, const AttachOptions& options) {
  std::string context = "attach to container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add_bool("stream", options.stream)
      .add_bool("stdin", options.stdin_stream)
      .add_bool("stdout", options.stdout_stream)
      .add_bool("stderr", options.stderr_stream)
      .add_bool("logs", options.logs);
  co_return co_await impl_->open_raw(
      make_request("POST", impl_->path("/containers/" + encode_path_segment(id) + "/attach" +
                                       query.to_string())),
      context);
}

asio::awaitable<Result<std::unique_ptr<BodyReader>>> DockerClient::get_archive(
    const std::string& id, const std::string& path) {
  std::string context = "copy " + path + " from container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add("path", path);
  co_return co_await impl_->open_stream(
      make_request("GET", impl_->path("/containers/" + encode_path_segment(id) + "/archive" +
                                      query.to_string())),
      context, impl_->options.call_timeout);
}

asio::awaitable<Status> DockerClient::put_archive(const std::string& id, const std::string& path,
                                                  std::string archive) {
  std::string context = "copy into " + path + " in container " + short_id(id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add("path", path);
  HttpRequest request = make_request("PUT", impl_->path("/containers/" + encode_path_segment(id) +
                                                        "/archive" + query.to_string()));
  request.body = std::move(archive);
  request.content_type = "application/x-tar";
  auto response = co_await impl_->call(std::move(request), context);
  if (!response) co_return response.error();
  co_return check_status(*response, context);
}

// ---- Exec ----

asio::awaitable<Result<std::string>> DockerClient::create_exec(const std::string& container_id,
                                                               const ExecConfig& config) {
  std::string context = "create exec in container " + short_id(container_id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  auto doc = co_await impl_->call_json(
      make_json_request("POST",
                        impl_->path("/containers/" + encode_path_segment(container_id) + "/exec"),
                        exec_create_body(config)),
      context);
  if (!doc) co_return doc.error();
  std::string id = get_string(*doc, "Id");
  if (id.empty()) co_return internal_error(context + ": dockerd returned no exec id");
  co_return id;
}

asio::awaitable<Result<std::unique_ptr<RawStream>>> DockerClient::start_exec(
    const std::string& exec_id, bool tty) {
  std::string context = "start exec " + short_id(exec_id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  // Built apart from the co_await: g++ 12 rejects an initializer list alive across a suspension.
  HttpRequest request =
      make_json_request("POST", impl_->path("/exec/" + encode_path_segment(exec_id) + "/start"),
                        json{{"Detach", false}, {"Tty", tty}});
  co_return co_await impl_->open_raw(std::move(request), context);
}

asio::awaitable<Result<ExecInfo>> DockerClient::inspect_exec(const std::string& exec_id) {
  std::string context = "inspect exec " + short_id(exec_id);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  auto doc = co_await impl_->call_json(
      make_request("GET", impl_->path("/exec/" + encode_path_segment(exec_id) + "/json")), context);
  if (!doc) co_return doc.error();
  co_return parse_exec_info(*doc);
}

// ---- Images ----

asio::awaitable<Result<ImageInfo>> DockerClient::inspect_image(const std::string& name) {
  std::string context = "inspect image " + short_id(name);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  auto doc = co_await impl_->call_json(
      make_request("GET", impl_->path("/images/" + encode_path(name) + "/json")), context);
  if (!doc) co_return doc.error();
  co_return parse_image_info(std::move(*doc));
}

asio::awaitable<Result<std::vector<ImageSummary>>> DockerClient::list_images(
    const ListImagesOptions& options) {
  std::string context = "list images";
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add_bool("all", options.all);
  std::map<std::string, std::vector<std::string>> filters{{"reference", options.reference_filters},
                                                          {"label", options.label_filters}};
  if (std::string f = filters_json(filters); f != "{}") query.add("filters", f);
  auto doc = co_await impl_->call_json(
      make_request("GET", impl_->path("/images/json" + query.to_string())), context);
  if (!doc) co_return doc.error();
  std::vector<ImageSummary> out;
  if (doc->is_array()) {
    for (const auto& item : *doc) out.push_back(parse_image_summary(item));
  }
  co_return out;
}

asio::awaitable<Status> DockerClient::remove_image(const std::string& name, bool force,
                                                   bool prune_parents) {
  std::string context = "remove image " + short_id(name);
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add_bool("force", force).add_bool("noprune", !prune_parents);
  auto response = co_await impl_->call(
      make_request("DELETE", impl_->path("/images/" + encode_path(name) + query.to_string())),
      context);
  if (!response) co_return response.error();
  co_return check_status(*response, context);
}

asio::awaitable<Status> DockerClient::tag_image(const std::string& source,
                                                const std::string& repository,
                                                const std::string& tag) {
  std::string context = "tag image " + short_id(source) + " as " + repository + ":" + tag;
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  Query query;
  query.add("repo", repository).add("tag", tag);
  auto response = co_await impl_->call(
      make_request("POST",
                   impl_->path("/images/" + encode_path(source) + "/tag" + query.to_string())),
      context);
  if (!response) co_return response.error();
  co_return check_status(*response, context);
}

asio::awaitable<Status> DockerClient::pull_image(
    const std::string& image, std::function<void(const PullProgress&)> on_progress,
    Millis timeout) {
  using namespace asio::experimental::awaitable_operators;
  std::string context = "pull image " + image;
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(context);
  ImageReference ref = split_image_reference(image);
  Query query;
  query.add("fromImage", ref.repository).add("tag", ref.tag);
  HttpRequest request = make_request("POST", impl_->path("/images/create" + query.to_string()));

  std::unique_ptr<BodyReader> reader;
  asio::steady_timer timer(impl_->executor, timeout);
  auto outcome =
      co_await (impl_->pull(std::move(request), context, std::move(on_progress), reader, timeout) ||
                timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (reader) reader->close();
  if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
  if (auto [ec] = std::get<1>(outcome); ec) co_return cancelled(context + ": cancelled");
  co_return deadline_exceeded(context + ": not finished within " + describe_duration(timeout));
}

asio::awaitable<Result<std::string>> DockerClient::build_image(const BuildOptions& options,
                                                               BodySource context,
                                                               BuildStreamParser& parser,
                                                               Millis timeout) {
  using namespace asio::experimental::awaitable_operators;
  std::string what = "build image " + options.tag;
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context(what);
  Query query;
  query.add("t", options.tag).add("dockerfile", options.dockerfile);
  if (!options.build_args.empty()) query.add("buildargs", json(options.build_args).dump());
  if (!options.labels.empty()) query.add("labels", json(options.labels).dump());
  if (!options.target.empty()) query.add("target", options.target);
  if (!options.platform.empty()) query.add("platform", options.platform);
  if (!options.network_mode.empty()) query.add("networkmode", options.network_mode);
  query.add_bool("nocache", options.no_cache).add_bool("pull", options.pull);
  query.add("rm", "1").add("forcerm", "1").add("version", options.buildkit ? "2" : "1");
  HttpRequest request = make_request("POST", impl_->path("/build" + query.to_string()));
  request.content_type = "application/x-tar";

  std::unique_ptr<BodyReader> reader;
  asio::steady_timer timer(impl_->executor, timeout);
  auto outcome = co_await (
      impl_->build(std::move(request), std::move(context), parser, reader, timeout, what) ||
      timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (reader) reader->close();
  if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
  if (auto [ec] = std::get<1>(outcome); ec) co_return cancelled(what + ": cancelled");
  co_return deadline_exceeded(what + ": not finished within " + describe_duration(timeout));
}

// ---- Events ----

asio::awaitable<Result<std::unique_ptr<EventStream>>> DockerClient::events(
    const EventsOptions& options) {
  if (Status s = co_await negotiate(); !s.ok()) co_return s.with_context("follow dockerd events");
  auto opened_at = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  EventsOpener open = [impl = impl_.get(), filters = options.filters,
                       until = options.until_nano](std::optional<std::int64_t> since) {
    return impl->open_events(filters, since, until);
  };
  auto reader = co_await open(options.since_nano);
  if (!reader) co_return reader.error();
  co_return std::make_unique<DockerEventStream>(impl_->executor, options, std::move(open),
                                                std::move(*reader), opened_at);
}

}  // namespace odd::engine
