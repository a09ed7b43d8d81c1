#include "proto/api_types.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <initializer_list>
#include <limits>

namespace odd::proto {

namespace {

using std::chrono::days;
using std::chrono::floor;
using std::chrono::hh_mm_ss;
using std::chrono::seconds;
using std::chrono::sys_days;
using std::chrono::year_month_day;

struct Civil {
  int year;
  unsigned month, day;
  long hours, minutes, secs;
};

Civil civil(Timestamp time) {
  const auto day = floor<days>(time);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> hms{time - day};
  return {int(ymd.year()),
          unsigned(ymd.month()),
          unsigned(ymd.day()),
          static_cast<long>(hms.hours().count()),
          static_cast<long>(hms.minutes().count()),
          static_cast<long>(hms.seconds().count())};
}

bool digits(std::string_view text, std::size_t from, std::size_t n, int& value) {
  value = 0;
  for (std::size_t i = from; i < from + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

std::optional<Timestamp> make_time(int year, int month, int day, int hour, int minute, int second) {
  const year_month_day ymd{std::chrono::year(year), std::chrono::month(unsigned(month)),
                           std::chrono::day(unsigned(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  return Timestamp(sys_days(ymd)) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         seconds(second);
}

// Reads "YYYYMMDD-HHMMSSZ" (compact) or "YYYY-MM-DDTHH:MM:SSZ" exactly.
std::optional<Timestamp> parse_time(std::string_view text, bool compact) {
  // Offsets of year, month, day, hour, minute, second, then the literal characters.
  static constexpr std::array<std::size_t, 6> kCompact{0, 4, 6, 9, 11, 13};
  static constexpr std::array<std::size_t, 6> kRfc{0, 5, 8, 11, 14, 17};
  const auto& at = compact ? kCompact : kRfc;
  if (text.size() != (compact ? 16u : 20u) || text.back() != 'Z') return std::nullopt;
  if (compact ? text[8] != '-'
              : (text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
                 text[16] != ':')) {
    return std::nullopt;
  }
  std::array<int, 6> v{};
  for (std::size_t i = 0; i < 6; ++i) {
    if (!digits(text, at[i], i == 0 ? 4 : 2, v[i])) return std::nullopt;
  }
  return make_time(v[0], v[1], v[2], v[3], v[4], v[5]);
}

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

template <class E, std::size_t N>
Result<E> parse_enum(std::string_view text, const std::array<std::string_view, N>& names,
                     std::string_view what) {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == text) return static_cast<E>(i);
  }
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) {
    expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ");
    expected += names[i];
  }
  return invalid_argument("unknown " + std::string(what) + " " + in_quotes(text) + "; expected " +
                          expected);
}

constexpr std::array<std::string_view, 5> kRunStates{"queued", "running", "succeeded", "failed",
                                                     "cancelled"};
constexpr std::array<std::string_view, 8> kJobStates{
    "pending", "running", "retrying", "succeeded", "failed", "timed_out", "cancelled", "skipped"};
constexpr std::array<std::string_view, 3> kSuiteStatuses{"pass", "fail", "skip"};
constexpr std::array<Code, 10> kCodes{Code::kOk,
                                      Code::kInvalidArgument,
                                      Code::kNotFound,
                                      Code::kAlreadyExists,
                                      Code::kFailedPrecondition,
                                      Code::kPermissionDenied,
                                      Code::kUnavailable,
                                      Code::kDeadlineExceeded,
                                      Code::kCancelled,
                                      Code::kInternal};

Json nullable(const std::optional<std::string>& value) {
  return value ? Json(*value) : Json(nullptr);
}
Json nullable(const std::optional<Timestamp>& value) {
  return value ? Json(format_rfc3339(*value)) : Json(nullptr);
}
Json nullable(const std::optional<std::int64_t>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json encode_map(const OutputMap& map) {
  Json out = Json::object();
  for (const auto& [key, value] : map) out[key] = value;
  return out;
}

Json encode_matrix(const MatrixValues& matrix) {
  Json out = Json::object();
  for (const auto& [key, value] : matrix) out[key] = value;
  return out;
}

std::string join_path(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
}

std::string index_path(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

// Reads the keys of one JSON object, keeping the first error with the path of its key.
class ObjectReader {
 public:
  ObjectReader(const Json& json, std::string path) : json_(json), path_(std::move(path)) {
    if (!json_.is_object()) fail(path_, "expected an object, got " + type_of(json_));
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  const std::string& path() const { return path_; }

  void fail(std::string_view path, std::string problem) {
    if (!ok()) return;
    status_ = invalid_argument(path.empty() ? problem : std::string(path) + ": " + problem);
  }
  void fail(Status status) {
    if (ok()) status_ = std::move(status);
  }

  // Fails on any key not in `known` (request bodies only).
  void only_keys(std::initializer_list<std::string_view> known) {
    if (!ok()) return;
    for (const auto& [key, value] : json_.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        fail(join_path(path_, key), "unknown key");
        return;
      }
    }
  }

  // The value at `key`; nullptr when it is absent (an error unless `optional`).
  const Json* get(std::string_view key, bool optional = false) {
    if (!ok()) return nullptr;
    auto it = json_.find(std::string(key));
    if (it == json_.end()) {
      if (!optional) fail(join_path(path_, key), "required key is missing");
      return nullptr;
    }
    return &*it;
  }

  std::string string(std::string_view key) {
    const Json* v = get(key);
    if (v == nullptr) return {};
    if (!v->is_string()) return wrong(key, "a string", *v), std::string();
    return v->get<std::string>();
  }

  std::optional<std::string> nullable_string(std::string_view key) {
    const Json* v = get(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    if (!v->is_string()) return wrong(key, "a string or null", *v), std::nullopt;
    return v->get<std::string>();
  }

  bool boolean(std::string_view key, bool optional = false, bool fallback = false) {
    const Json* v = get(key, optional);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) return wrong(key, "true or false", *v), fallback;
    return v->get<bool>();
  }

  template <class U>
  U unsigned_number(std::string_view key) {
    const Json* v = get(key);
    if (v == nullptr) return U{};
    const auto value = as_unsigned(*v);
    if (!value || *value > std::numeric_limits<U>::max()) {
      return wrong(key,
                   "an unsigned integer up to " + std::to_string(std::numeric_limits<U>::max()),
                   *v),
             U{};
    }
    return static_cast<U>(*value);
  }

  std::int32_t int32(std::string_view key) {
    const Json* v = get(key);
    if (v == nullptr) return 0;
    const auto value = as_signed(*v);
    if (!value || *value < std::numeric_limits<std::int32_t>::min() ||
        *value > std::numeric_limits<std::int32_t>::max()) {
      return wrong(key, "a 32-bit integer", *v), 0;
    }
    return static_cast<std::int32_t>(*value);
  }

  std::optional<std::int64_t> nullable_int(std::string_view key) {
    const Json* v = get(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    const auto value = as_signed(*v);
    if (!value) return wrong(key, "an integer or null", *v), std::nullopt;
    return value;
  }

  Timestamp time(std::string_view key) {
    const Json* v = get(key);
    if (v == nullptr) return {};
    return read_time(key, *v, "an RFC 3339 UTC time such as \"2026-11-22T14:20:30Z\"")
        .value_or(Timestamp{});
  }

  std::optional<Timestamp> nullable_time(std::string_view key) {
    const Json* v = get(key);
    if (v == nullptr || v->is_null()) return std::nullopt;
    return read_time(key, *v, "an RFC 3339 UTC time such as \"2026-11-22T14:20:30Z\" or null");
  }

  template <class E>
  E enumerated(std::string_view key, Result<E> (*parse)(std::string_view)) {
    const Json* v = get(key);
    if (v == nullptr) return E{};
    if (!v->is_string()) return wrong(key, "a string", *v), E{};
    auto parsed = parse(v->get_ref<const std::string&>());
    if (!parsed) return fail(join_path(path_, key), parsed.error().message()), E{};
    return *parsed;
  }

  OutputMap string_map(std::string_view key, bool optional = false) {
    OutputMap out;
    const Json* v = get(key, optional);
    if (v == nullptr) return out;
    if (!v->is_object()) return wrong(key, "an object of strings", *v), out;
    for (const auto& [name, value] : v->items()) {
      if (!value.is_string()) {
        fail(join_path(join_path(path_, key), name), "expected a string, got " + type_of(value));
        return out;
      }
      out.emplace(name, value.get<std::string>());
    }
    return out;
  }

  MatrixValues matrix(std::string_view key) {
    MatrixValues out;
    OutputMap check;
    const Json* v = get(key);
    if (v == nullptr) return out;
    if (!v->is_object()) return wrong(key, "an object of strings", *v), out;
    for (const auto& [name, value] : v->items()) {
      if (!value.is_string()) {
        fail(join_path(join_path(path_, key), name), "expected a string, got " + type_of(value));
        return out;
      }
      out.emplace_back(name, value.get<std::string>());
    }
    return out;
  }

  // A nested object decoded by `decode(json, path)`.
  template <class T>
  T object(std::string_view key, Result<T> (*decode)(const Json&, const std::string&)) {
    const Json* v = get(key);
    if (v == nullptr) return T{};
    auto decoded = decode(*v, join_path(path_, key));
    if (!decoded) return fail(decoded.error()), T{};
    return std::move(*decoded);
  }

  template <class T>
  std::vector<T> array(std::string_view key, Result<T> (*decode)(const Json&, const std::string&),
                       bool optional = false) {
    std::vector<T> out;
    const Json* v = get(key, optional);
    if (v == nullptr) return out;
    if (!v->is_array()) return wrong(key, "an array", *v), out;
    const std::string at = join_path(path_, key);
    for (std::size_t i = 0; i < v->size(); ++i) {
      auto decoded = decode((*v)[i], index_path(at, i));
      if (!decoded) return fail(decoded.error()), out;
      out.push_back(std::move(*decoded));
    }
    return out;
  }

 private:
  static std::string type_of(const Json& v) {
    if (v.is_number_float()) return "a fractional number";
    return std::string(v.type_name());
  }

  void wrong(std::string_view key, std::string_view expected, const Json& got) {
    fail(join_path(path_, key), "expected " + std::string(expected) + ", got " + type_of(got));
  }

  static std::optional<std::uint64_t> as_unsigned(const Json& v) {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
      return static_cast<std::uint64_t>(v.get<std::int64_t>());
    }
    return std::nullopt;
  }

  static std::optional<std::int64_t> as_signed(const Json& v) {
    if (v.is_number_unsigned()) {
      const auto u = v.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return std::nullopt;
      }
      return static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<std::int64_t>();
    return std::nullopt;
  }

  std::optional<Timestamp> read_time(std::string_view key, const Json& v,
                                     std::string_view expected) {
    if (v.is_string()) {
      if (auto t = parse_rfc3339(v.get_ref<const std::string&>())) return *t;
      fail(join_path(path_, key), "expected " + std::string(expected) + ", got " +
                                      in_quotes(v.get_ref<const std::string&>()));
      return std::nullopt;
    }
    wrong(key, expected, v);
    return std::nullopt;
  }

  const Json& json_;
  std::string path_;
  Status status_;
};

template <class T>
Result<T> finish(const ObjectReader& reader, T value) {
  if (!reader.ok()) return reader.status();
  return value;
}

Result<Caller> caller_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  Caller c;
  c.uid = r.unsigned_number<std::uint32_t>("uid");
  c.gid = r.unsigned_number<std::uint32_t>("gid");
  c.pid = r.int32("pid");
  return finish(r, c);
}

Result<Progress> progress_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  Progress p;
  p.done = r.unsigned_number<std::uint64_t>("done");
  p.total = r.unsigned_number<std::uint64_t>("total");
  p.label = r.string("label");
  return finish(r, std::move(p));
}

Result<SuiteResult> suite_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  SuiteResult s;
  s.name = r.string("name");
  s.status = r.enumerated("status", &parse_suite_status);
  if (r.ok() && r.get("expect", true) != nullptr) s.expect = r.string("expect");
  return finish(r, std::move(s));
}

Result<JobStatus> job_status_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  JobStatus j;
  j.key = r.string("key");
  j.job = r.string("job");
  j.matrix = r.matrix("matrix");
  j.host = r.string("host");
  j.state = r.enumerated("state", &parse_job_state);
  j.attempt = r.unsigned_number<std::uint32_t>("attempt");
  j.exit_code = r.nullable_int("exit_code");
  j.progress = r.object("progress", &progress_at);
  j.started_at = r.nullable_time("started_at");
  j.finished_at = r.nullable_time("finished_at");
  j.outputs = r.string_map("outputs");
  return finish(r, std::move(j));
}

Result<JobSummary::LogPaths> log_paths_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  JobSummary::LogPaths p;
  p.stdout_path = r.nullable_string("stdout");
  p.stderr_path = r.nullable_string("stderr");
  return finish(r, std::move(p));
}

Result<JobSummary::StepLog> step_log_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  JobSummary::StepLog l;
  l.step = r.string("step");
  l.attempt = r.unsigned_number<std::uint32_t>("attempt");
  l.name = r.string("name");
  l.stdout_path = r.string("stdout");
  l.stderr_path = r.string("stderr");
  return finish(r, std::move(l));
}

Result<JobSummary> job_summary_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  JobSummary s;
  s.run_id = r.string("run_id");
  s.job = r.string("job");
  s.key = r.string("key");
  s.matrix = r.matrix("matrix");
  s.host = r.string("host");
  s.image = r.nullable_string("image");
  s.image_digest = r.nullable_string("image_digest");
  s.container_id = r.nullable_string("container_id");
  s.container_name = r.nullable_string("container_name");
  s.started_at = r.nullable_time("started_at");
  s.finished_at = r.nullable_time("finished_at");
  s.state = r.enumerated("state", &parse_job_state);
  s.exit_code = r.nullable_int("exit_code");
  s.attempts = r.unsigned_number<std::uint32_t>("attempts");
  s.error = r.nullable_string("error");
  s.log_paths = r.object("log_paths", &log_paths_at);
  s.logs = r.array("logs", &step_log_at, true);
  s.suites = r.array("suites", &suite_at);
  s.outputs = r.string_map("outputs");
  return finish(r, std::move(s));
}

Result<JobCounts> counts_at(const Json& json, const std::string& path) {
  ObjectReader r(json, path);
  JobCounts c;
  c.succeeded = r.unsigned_number<std::uint64_t>("succeeded");
  c.failed = r.unsigned_number<std::uint64_t>("failed");
  c.timed_out = r.unsigned_number<std::uint64_t>("timed_out");
  c.cancelled = r.unsigned_number<std::uint64_t>("cancelled");
  c.skipped = r.unsigned_number<std::uint64_t>("skipped");
  return finish(r, c);
}

constexpr std::array<std::string_view, 5> kEnvelope{"seq", "ts", "run", "job", "type"};

}  // namespace

std::string format_rfc3339(Timestamp time) {
  const Civil c = civil(time);
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02ld:%02ld:%02ldZ", c.year, c.month, c.day,
                c.hours, c.minutes, c.secs);
  return buffer;
}

Result<Timestamp> parse_rfc3339(std::string_view text) {
  if (auto time = parse_time(text, false)) return *time;
  return invalid_argument("expected an RFC 3339 UTC time such as \"2026-11-22T14:20:30Z\", got " +
                          in_quotes(text));
}

std::string format_compact_utc(Timestamp time) {
  const Civil c = civil(time);
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%04d%02u%02u-%02ld%02ld%02ldZ", c.year, c.month, c.day,
                c.hours, c.minutes, c.secs);
  return buffer;
}

std::string make_run_id(std::chrono::system_clock::time_point now, std::uint16_t random) {
  char suffix[8];
  std::snprintf(suffix, sizeof suffix, "-%04x", static_cast<unsigned>(random));
  return format_compact_utc(floor<seconds>(now)) + suffix;
}

bool valid_run_id(std::string_view id) {
  if (id.size() != 21 || id[16] != '-') return false;
  if (!parse_time(id.substr(0, 16), true)) return false;
  return std::all_of(id.begin() + 17, id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string_view to_string(RunState state) { return kRunStates[static_cast<std::size_t>(state)]; }
std::string_view to_string(JobState state) { return kJobStates[static_cast<std::size_t>(state)]; }
std::string_view to_string(SuiteStatus status) {
  return kSuiteStatuses[static_cast<std::size_t>(status)];
}

Result<RunState> parse_run_state(std::string_view text) {
  return parse_enum<RunState>(text, kRunStates, "run state");
}
Result<JobState> parse_job_state(std::string_view text) {
  return parse_enum<JobState>(text, kJobStates, "job state");
}
Result<SuiteStatus> parse_suite_status(std::string_view text) {
  return parse_enum<SuiteStatus>(text, kSuiteStatuses, "suite status");
}

bool is_final(RunState state) {
  return state == RunState::kSucceeded || state == RunState::kFailed ||
         state == RunState::kCancelled;
}

bool is_final(JobState state) {
  return state != JobState::kPending && state != JobState::kRunning && state != JobState::kRetrying;
}

JobCounts count_jobs(const std::vector<JobSummary>& jobs) {
  JobCounts counts;
  for (const auto& job : jobs) {
    switch (job.state) {
      case JobState::kSucceeded:
        ++counts.succeeded;
        break;
      case JobState::kFailed:
        ++counts.failed;
        break;
      case JobState::kTimedOut:
        ++counts.timed_out;
        break;
      case JobState::kCancelled:
        ++counts.cancelled;
        break;
      case JobState::kSkipped:
        ++counts.skipped;
        break;
      default:
        break;
    }
  }
  return counts;
}

Status validate(const SubmitRequest& request) {
  if (request.spec.has_value() == request.spec_text.has_value()) {
    return invalid_argument("exactly one of spec and spec_text is required");
  }
  if (request.spec && !request.spec->is_object()) {
    return invalid_argument("spec: expected an object, got " +
                            std::string(request.spec->type_name()));
  }
  if (request.workdir.empty() || request.workdir.front() != '/') {
    return invalid_argument("workdir: must be an absolute path, got " + in_quotes(request.workdir));
  }
  return ok_status();
}

ApiError ApiError::from_status(const Status& status, std::string path) {
  return {status.ok() ? Code::kInternal : status.code(), status.message(), std::move(path)};
}

Status ApiError::to_status() const { return {code, message}; }

unsigned http_status(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
    case Code::kFailedPrecondition:
      return 409;
    case Code::kCancelled:
      return 499;
    case Code::kInternal:
      return 500;
    case Code::kUnavailable:
      return 503;
    case Code::kDeadlineExceeded:
      return 504;
  }
  return 500;
}

Result<Code> parse_code_name(std::string_view name) {
  for (Code code : kCodes) {
    if (code_name(code) == name) return code;
  }
  return invalid_argument("unknown error code " + in_quotes(name));
}

Json encode(const Caller& caller) {
  return Json{{"uid", caller.uid}, {"gid", caller.gid}, {"pid", caller.pid}};
}

Json encode(const Progress& progress) {
  return Json{{"done", progress.done}, {"total", progress.total}, {"label", progress.label}};
}

Json encode(const SuiteResult& suite) {
  Json out{{"name", suite.name}, {"status", to_string(suite.status)}};
  if (suite.expect) out["expect"] = *suite.expect;
  return out;
}

Json encode(const JobStatus& job) {
  Json out = Json::object();
  out["key"] = job.key;
  out["job"] = job.job;
  out["matrix"] = encode_matrix(job.matrix);
  out["host"] = job.host;
  out["state"] = to_string(job.state);
  out["attempt"] = job.attempt;
  out["exit_code"] = nullable(job.exit_code);
  out["progress"] = encode(job.progress);
  out["started_at"] = nullable(job.started_at);
  out["finished_at"] = nullable(job.finished_at);
  out["outputs"] = encode_map(job.outputs);
  return out;
}

Json encode(const RunInfo& run, bool with_jobs) {
  Json out = Json::object();
  out["id"] = run.id;
  out["name"] = run.name;
  out["state"] = to_string(run.state);
  out["created_at"] = format_rfc3339(run.created_at);
  out["started_at"] = nullable(run.started_at);
  out["finished_at"] = nullable(run.finished_at);
  out["caller"] = encode(run.caller);
  if (with_jobs) {
    Json jobs = Json::array();
    for (const auto& job : run.jobs) jobs.push_back(encode(job));
    out["jobs"] = std::move(jobs);
  }
  return out;
}

Json encode(const Event& event) {
  Json out = Json::object();
  out["seq"] = event.seq;
  out["ts"] = format_rfc3339(event.ts);
  out["run"] = event.run;
  out["job"] = nullable(event.job);
  out["type"] = event.type;
  if (event.payload.is_object()) {
    for (const auto& [key, value] : event.payload.items()) {
      if (std::find(kEnvelope.begin(), kEnvelope.end(), key) == kEnvelope.end()) out[key] = value;
    }
  }
  return out;
}

Json encode(const JobSummary& s) {
  Json out = Json::object();
  out["run_id"] = s.run_id;
  out["job"] = s.job;
  out["key"] = s.key;
  out["matrix"] = encode_matrix(s.matrix);
  out["host"] = s.host;
  out["image"] = nullable(s.image);
  out["image_digest"] = nullable(s.image_digest);
  out["container_id"] = nullable(s.container_id);
  out["container_name"] = nullable(s.container_name);
  out["started_at"] = nullable(s.started_at);
  out["finished_at"] = nullable(s.finished_at);
  out["state"] = to_string(s.state);
  out["exit_code"] = nullable(s.exit_code);
  out["attempts"] = s.attempts;
  out["error"] = nullable(s.error);
  out["log_paths"] = Json{{"stdout", nullable(s.log_paths.stdout_path)},
                          {"stderr", nullable(s.log_paths.stderr_path)}};
  Json suites = Json::array();
  for (const auto& suite : s.suites) suites.push_back(encode(suite));
  out["suites"] = std::move(suites);
  out["outputs"] = encode_map(s.outputs);
  // After DESIGN §9's keys, in their order: added later, so readers of the order see no change.
  Json logs = Json::array();
  for (const auto& log : s.logs) {
    logs.push_back(Json{{"step", log.step},
                        {"attempt", log.attempt},
                        {"name", log.name},
                        {"stdout", log.stdout_path},
                        {"stderr", log.stderr_path}});
  }
  out["logs"] = std::move(logs);
  return out;
}

Json encode(const JobCounts& c) {
  return Json{{"succeeded", c.succeeded},
              {"failed", c.failed},
              {"timed_out", c.timed_out},
              {"cancelled", c.cancelled},
              {"skipped", c.skipped}};
}

Json encode(const RunSummary& s) {
  Json out = Json::object();
  out["run_id"] = s.run_id;
  out["name"] = s.name;
  out["state"] = to_string(s.state);
  out["started_at"] = nullable(s.started_at);
  out["finished_at"] = nullable(s.finished_at);
  out["duration_ms"] = nullable(s.duration_ms);
  out["caller"] = encode(s.caller);
  out["counts"] = encode(s.counts);
  Json jobs = Json::array();
  for (const auto& job : s.jobs) jobs.push_back(encode(job));
  out["jobs"] = std::move(jobs);
  return out;
}

Json encode(const SubmitRequest& request) {
  Json out = Json::object();
  if (request.spec) out["spec"] = *request.spec;
  if (request.spec_text) out["spec_text"] = *request.spec_text;
  out["vars"] = encode_map(request.vars);
  out["secrets"] = encode_map(request.secrets);
  out["workdir"] = request.workdir;
  out["detach"] = request.detach;
  return out;
}

Json encode(const ApiError& error) {
  Json body = Json::object();
  body["code"] = code_name(error.code);
  body["message"] = error.message;
  body["path"] = error.path.empty() ? Json(nullptr) : Json(error.path);
  return Json{{"error", std::move(body)}};
}

Result<Caller> decode_caller(const Json& json) { return caller_at(json, ""); }
Result<Progress> decode_progress(const Json& json) { return progress_at(json, ""); }
Result<SuiteResult> decode_suite_result(const Json& json) { return suite_at(json, ""); }
Result<JobStatus> decode_job_status(const Json& json) { return job_status_at(json, ""); }
Result<JobSummary> decode_job_summary(const Json& json) { return job_summary_at(json, ""); }
Result<JobCounts> decode_job_counts(const Json& json) { return counts_at(json, ""); }

Result<RunInfo> decode_run_info(const Json& json) {
  ObjectReader r(json, "");
  RunInfo run;
  run.id = r.string("id");
  run.name = r.string("name");
  run.state = r.enumerated("state", &parse_run_state);
  run.created_at = r.time("created_at");
  run.started_at = r.nullable_time("started_at");
  run.finished_at = r.nullable_time("finished_at");
  run.caller = r.object("caller", &caller_at);
  run.jobs = r.array("jobs", &job_status_at, true);
  return finish(r, std::move(run));
}

Result<Event> decode_event(const Json& json) {
  ObjectReader r(json, "");
  Event event;
  event.seq = r.unsigned_number<std::uint64_t>("seq");
  event.ts = r.time("ts");
  event.run = r.string("run");
  if (r.ok() && r.get("job", true) != nullptr) event.job = r.nullable_string("job");
  event.type = r.string("type");
  if (!r.ok()) return r.status();
  for (const auto& [key, value] : json.items()) {
    if (std::find(kEnvelope.begin(), kEnvelope.end(), key) == kEnvelope.end()) {
      event.payload[key] = value;
    }
  }
  return event;
}

Result<RunSummary> decode_run_summary(const Json& json) {
  ObjectReader r(json, "");
  RunSummary s;
  s.run_id = r.string("run_id");
  s.name = r.string("name");
  s.state = r.enumerated("state", &parse_run_state);
  s.started_at = r.nullable_time("started_at");
  s.finished_at = r.nullable_time("finished_at");
  s.duration_ms = r.nullable_int("duration_ms");
  s.caller = r.object("caller", &caller_at);
  s.counts = r.object("counts", &counts_at);
  s.jobs = r.array("jobs", &job_summary_at);
  return finish(r, std::move(s));
}

Result<SubmitRequest> decode_submit_request(const Json& json) {
  ObjectReader r(json, "");
  r.only_keys({"spec", "spec_text", "vars", "secrets", "workdir", "detach"});
  SubmitRequest request;
  if (const Json* spec = r.get("spec", true)) request.spec = *spec;
  if (r.ok() && r.get("spec_text", true) != nullptr) request.spec_text = r.string("spec_text");
  request.vars = r.string_map("vars", true);
  request.secrets = r.string_map("secrets", true);
  request.workdir = r.string("workdir");
  request.detach = r.boolean("detach", true, false);
  if (!r.ok()) return r.status();
  if (Status status = validate(request); !status.ok()) return status;
  return request;
}

Result<ApiError> decode_api_error(const Json& json) {
  ObjectReader outer(json, "");
  const Json* body = outer.get("error");
  if (!outer.ok()) return outer.status();
  ObjectReader r(*body, "error");
  ApiError error;
  error.code = r.enumerated("code", &parse_code_name);
  error.message = r.string("message");
  if (r.ok() && r.get("path", true) != nullptr) error.path = r.nullable_string("path").value_or("");
  return finish(r, std::move(error));
}

}  // namespace odd::proto
