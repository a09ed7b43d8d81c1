#include "daemon/run_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>
#include <utility>

#include "daemon/files.hpp"

namespace odd::daemon {

namespace {

namespace fs = std::filesystem;
using proto::Json;

constexpr mode_t kDirMode = 0750;
constexpr mode_t kFileMode = 0640;
constexpr std::size_t kMaxNameLength = 200;
constexpr std::string_view kDeletingPrefix = ".deleting-";
constexpr std::string_view kCreatingPrefix = ".creating-";
constexpr std::string_view kRunFile = "run.json";
constexpr std::string_view kEventsFile = "events.ndjson";
constexpr std::string_view kSummaryFile = "summary.json";

// mkdir with our mode; an existing directory is fine unless `must_be_new`.
Status make_dir(const fs::path& dir, bool must_be_new) {
  if (::mkdir(dir.c_str(), kDirMode) == 0) return {};
  const int err = errno;
  if (err == EEXIST && !must_be_new) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
    return failed_precondition(dir.native() + " exists and is not a directory");
  }
  if (err == EEXIST) return already_exists(dir.native() + " already exists");
  return errno_status(err, "creating directory " + dir.native());
}

Result<std::size_t> pread_some(int fd, char* out, std::size_t size, std::uint64_t offset,
                               const fs::path& path) {
  while (true) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return errno_status(errno, "reading " + path.native());
  }
}

// The offset just after the last '\n' before `end`, or 0 when there is none.
Result<std::uint64_t> line_start_before(int fd, std::uint64_t end, const fs::path& path) {
  std::array<char, 64 * 1024> buffer{};
  while (end > 0) {
    const std::uint64_t chunk = std::min<std::uint64_t>(end, buffer.size());
    const std::uint64_t begin = end - chunk;
    auto n = pread_some(fd, buffer.data(), chunk, begin, path);
    if (!n) return n.error();
    if (*n != chunk) return internal_error(path.native() + ": changed while being read");
    for (std::uint64_t i = chunk; i > 0; --i) {
      if (buffer[i - 1] == '\n') return begin + i;
    }
    end = begin;
  }
  return std::uint64_t{0};
}

// nlohmann's dump throws on invalid UTF-8; event payloads carry container output.
std::string dump(const Json& json, int indent) {
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Result<Json> parse_json(std::string_view text, std::string_view where) {
  Json json = Json::parse(text, nullptr, false);
  if (json.is_discarded()) return internal_error(std::string(where) + ": not valid JSON");
  return json;
}

Result<proto::Event> decode_line(std::string_view line, std::string_view where) {
  auto json = parse_json(line, where);
  if (!json) return json.error();
  auto event = proto::decode_event(*json);
  if (!event) return internal_error(std::string(where) + ": " + event.error().message());
  return event;
}

// Job keys, container names and cache names: a single safe path component.
bool safe_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  if (name.find("..") != std::string_view::npos) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

Status bad_id(std::string_view id) {
  return invalid_argument("\"" + std::string(id.substr(0, 64)) +
                          "\" is not a run id (expected YYYYMMDD-HHMMSSZ-xxxx)");
}

Status bad_name(std::string_view what, std::string_view name) {
  return invalid_argument(std::string(what) + " \"" + std::string(name.substr(0, 64)) +
                          "\": expected [A-Za-z0-9][A-Za-z0-9_.-]* without \"..\"");
}

// The creation time a valid run id carries ("20261122-142030Z-...").
std::chrono::sys_seconds run_id_time(std::string_view id) {
  const auto number = [&](std::size_t pos, std::size_t len) {
    int value = 0;
    for (std::size_t i = pos; i < pos + len; ++i) value = value * 10 + (id[i] - '0');
    return value;
  };
  const std::chrono::year_month_day date{std::chrono::year(number(0, 4)),
                                         std::chrono::month(static_cast<unsigned>(number(4, 2))),
                                         std::chrono::day(static_cast<unsigned>(number(6, 2)))};
  return std::chrono::sys_days(date) + std::chrono::hours(number(9, 2)) +
         std::chrono::minutes(number(11, 2)) + std::chrono::seconds(number(13, 2));
}

std::string random_hex(std::size_t digits) {
  std::random_device device;
  std::string out;
  constexpr char kHex[] = "0123456789abcdef";
  while (out.size() < digits) {
    std::uint32_t bits = device();
    for (int i = 0; i < 8 && out.size() < digits; ++i, bits >>= 4) out += kHex[bits & 0xf];
  }
  return out;
}

bool instance_id_ok(std::string_view id) {
  return id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Json encode_record(const RunRecord& record) {
  Json json = Json::object();
  json["format"] = record.format;
  json["run"] = proto::encode(record.info);
  json["spec"] = record.spec;
  json["spec_text"] = record.spec_text.empty() ? Json() : Json(record.spec_text);
  Json vars = Json::object();
  for (const auto& [key, value] : record.vars) vars[key] = value;
  json["vars"] = std::move(vars);
  json["workdir"] = record.workdir;
  json["detach"] = record.detach;
  json["error"] = record.error ? Json(*record.error) : Json();
  return json;
}

Result<RunRecord> decode_record(const Json& json, const std::string& where) {
  const auto corrupt = [&](std::string_view what) {
    return internal_error(where + ": " + std::string(what));
  };
  if (!json.is_object()) return corrupt("expected an object");
  const auto format = json.find("format");
  if (format == json.end() || !format->is_number_integer()) return corrupt("no format version");
  if (format->get<std::int64_t>() != RunRecord::kFormat) {
    return failed_precondition(where + ": format " + std::to_string(format->get<std::int64_t>()) +
                               " is not one this daemon reads (" +
                               std::to_string(RunRecord::kFormat) + ")");
  }
  RunRecord record;
  const auto run = json.find("run");
  if (run == json.end()) return corrupt("run: missing");
  auto info = proto::decode_run_info(*run);
  if (!info) return corrupt("run." + info.error().message());
  record.info = std::move(*info);
  const auto spec = json.find("spec");
  if (spec != json.end() && !spec->is_null()) {
    if (!spec->is_object()) return corrupt("spec: expected an object or null");
    record.spec = *spec;
  }
  const auto spec_text = json.find("spec_text");
  if (spec_text != json.end() && !spec_text->is_null()) {
    if (!spec_text->is_string()) return corrupt("spec_text: expected a string or null");
    record.spec_text = spec_text->get<std::string>();
  }
  const auto vars = json.find("vars");
  if (vars != json.end()) {
    if (!vars->is_object()) return corrupt("vars: expected an object");
    for (const auto& [key, value] : vars->items()) {
      if (!value.is_string()) return corrupt("vars." + key + ": expected a string");
      record.vars.emplace(key, value.get<std::string>());
    }
  }
  const auto workdir = json.find("workdir");
  if (workdir == json.end() || !workdir->is_string()) return corrupt("workdir: expected a string");
  record.workdir = workdir->get<std::string>();
  const auto detach = json.find("detach");
  if (detach == json.end() || !detach->is_boolean()) return corrupt("detach: expected a boolean");
  record.detach = detach->get<bool>();
  const auto error = json.find("error");
  if (error != json.end() && !error->is_null()) {
    if (!error->is_string()) return corrupt("error: expected a string or null");
    record.error = error->get<std::string>();
  }
  return record;
}

}  // namespace

EventLog::EventLog(int fd, fs::path path, std::uint64_t size, std::uint64_t last_seq)
    : fd_(fd), path_(std::move(path)), size_(size), last_seq_(last_seq) {}

EventLog::~EventLog() { ::close(fd_); }

Status EventLog::append(const proto::Event& event) {
  if (event.seq <= last_seq_) {
    return invalid_argument(path_.native() + ": event seq " + std::to_string(event.seq) +
                            " is not after the last one, " + std::to_string(last_seq_));
  }
  std::string line = dump(proto::encode(event), -1);
  line += '\n';
  // One write(2) of the whole line; should it fail part-way, the partial line is cut off again
  // so that the next append cannot turn it into a corrupt line in the middle of the log.
  Status status = write_all(fd_, line, path_);
  if (!status.ok()) {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
      status = status.with_context("(and cutting off the partial line failed too)");
    }
    return status;
  }
  size_ += line.size();
  last_seq_ = event.seq;
  return {};
}

Status EventLog::sync() {
  if (::fsync(fd_) != 0) return errno_status(errno, "syncing " + path_.native());
  return {};
}

Result<std::unique_ptr<RunStore>> RunStore::open(const fs::path& state_dir) {
  if (!state_dir.is_absolute()) {
    return invalid_argument("state dir \"" + state_dir.native() + "\": expected an absolute path");
  }
  const fs::path dir = state_dir.lexically_normal();
  const auto context = [&](const Status& s) {
    return s.with_context("state dir " + dir.native() +
                          " (set state_dir in the config or --state-dir)");
  };
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    const fs::path parent = dir.parent_path();
    fs::create_directories(parent, ec);
    if (ec) return context(errno_status(ec.value(), "creating " + parent.native()));
    if (auto s = make_dir(dir, false); !s.ok()) return context(s);
  }
  for (std::string_view sub : {"runs", "cache"}) {
    if (auto s = make_dir(dir / sub, false); !s.ok()) return context(s);
  }

  // Prove the directories writable now rather than at the first run.
  const std::array<fs::path, 3> writable = {dir, dir / "runs", dir / "cache"};
  for (const fs::path& sub : writable) {
    const fs::path probe = sub / ".write-test";
    Fd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kFileMode));
    if (fd.get() < 0) return context(errno_status(errno, "cannot write in " + sub.native()));
    ::unlink(probe.c_str());
  }

  std::unique_ptr<RunStore> store(new RunStore(dir));

  // A crash during a prune or a create_run left runs renamed aside; finish what it began.
  for (fs::directory_iterator it(dir / "runs", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().native();
    if (name.starts_with(kDeletingPrefix) || name.starts_with(kCreatingPrefix)) {
      std::error_code remove_ec;
      fs::remove_all(it->path(), remove_ec);
    }
  }
  if (ec) return context(errno_status(ec.value(), "listing runs"));

  const fs::path id_file = dir / "instance-id";
  auto text = read_file(id_file);
  if (text) {
    std::string id = std::move(*text);
    if (id.ends_with('\n')) id.pop_back();
    if (!instance_id_ok(id)) {
      return failed_precondition(id_file.native() +
                                 ": expected 16 lowercase hex digits (remove the file to make a "
                                 "new instance id; containers of the old one are then orphans)");
    }
    store->instance_id_ = std::move(id);
  } else if (text.error().code() == Code::kNotFound) {
    store->instance_id_ = random_hex(16);
    if (auto s = write_file_atomic(id_file, store->instance_id_ + "\n"); !s.ok()) {
      return context(s);
    }
  } else {
    return context(text.error());
  }
  return store;
}

Result<fs::path> RunStore::run_dir(std::string_view id) const {
  if (!proto::valid_run_id(id)) return bad_id(id);
  return state_dir_ / "runs" / std::string(id);
}

Result<fs::path> RunStore::artifacts_dir(std::string_view id) const {
  auto dir = run_dir(id);
  if (!dir) return dir.error();
  return *dir / "artifacts";
}

Result<fs::path> RunStore::existing_run_dir(std::string_view id) const {
  auto dir = run_dir(id);
  if (!dir) return dir.error();
  struct stat st {};
  if (::stat(dir->c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return not_found("run " + std::string(id) + " does not exist");
  }
  return dir;
}

Result<fs::path> RunStore::job_dir(std::string_view id, std::string_view key) const {
  if (!safe_name(key)) return bad_name("job key", key);
  auto dir = existing_run_dir(id);
  if (!dir) return dir.error();
  fs::path job = *dir / "jobs" / std::string(key);
  if (auto s = make_dir(job, false); !s.ok()) return s;
  return job;
}

Result<fs::path> RunStore::cache_dir(std::string_view name) const {
  if (!safe_name(name)) return bad_name("cache name", name);
  fs::path dir = state_dir_ / "cache" / std::string(name);
  if (auto s = make_dir(dir, false); !s.ok()) return s;
  return dir;
}

Status RunStore::create_run(const RunRecord& record) {
  auto dir = run_dir(record.info.id);
  if (!dir) return dir.error();
  const auto exists = [&] { return already_exists("run " + record.info.id + " already exists"); };
  std::error_code ec;
  if (fs::exists(*dir, ec)) return exists();
  // Built aside and renamed into place, so a run directory never lacks its run.json, even
  // after a crash half-way.
  const fs::path runs = dir->parent_path();
  const fs::path aside = runs / (std::string(kCreatingPrefix) + record.info.id);
  fs::remove_all(aside, ec);
  Status status = make_dir(aside, true);
  for (std::string_view sub : {"jobs", "artifacts"}) {
    if (status.ok()) status = make_dir(aside / sub, false);
  }
  if (status.ok()) {
    const fs::path events = aside / kEventsFile;
    Fd fd(::open(events.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, kFileMode));
    if (fd.get() < 0) status = errno_status(errno, "creating " + events.native());
  }
  if (status.ok()) {
    status = write_file_atomic(aside / kRunFile, dump(encode_record(record), 2) + "\n");
  }
  if (status.ok() &&
      ::renameat2(AT_FDCWD, aside.c_str(), AT_FDCWD, dir->c_str(), RENAME_NOREPLACE) != 0) {
    status = errno == EEXIST ? exists() : errno_status(errno, "renaming " + aside.native());
  }
  if (status.ok()) return fsync_dir(runs);
  fs::remove_all(aside, ec);
  return status;
}

Status RunStore::write_run(const RunRecord& record) {
  auto dir = existing_run_dir(record.info.id);
  if (!dir) return dir.error();
  return write_file_atomic(*dir / kRunFile, dump(encode_record(record), 2) + "\n");
}

Result<RunRecord> RunStore::load_run(std::string_view id) const {
  auto dir = existing_run_dir(id);
  if (!dir) return dir.error();
  const fs::path file = *dir / kRunFile;
  auto text = read_file(file);
  if (!text) {
    if (text.error().code() == Code::kNotFound) {
      return internal_error(file.native() + " is missing");
    }
    return text.error();
  }
  auto json = parse_json(*text, file.native());
  if (!json) return json.error();
  return decode_record(*json, file.native());
}

Result<std::vector<std::string>> RunStore::list_run_ids() const {
  std::vector<std::string> ids;
  std::error_code ec;
  const fs::path runs = state_dir_ / "runs";
  for (fs::directory_iterator it(runs, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().native();
    std::error_code type_ec;
    if (proto::valid_run_id(name) && it->is_directory(type_ec)) ids.push_back(std::move(name));
  }
  if (ec) return errno_status(ec.value(), "listing " + runs.native());
  std::sort(ids.begin(), ids.end(), std::greater<>());
  return ids;
}

Result<std::unique_ptr<EventLog>> RunStore::open_event_log(std::string_view id) const {
  auto dir = existing_run_dir(id);
  if (!dir) return dir.error();
  fs::path file = *dir / kEventsFile;
  Fd fd(::open(file.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, kFileMode));
  if (fd.get() < 0) return errno_status(errno, "opening " + file.native());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_status(errno, "reading " + file.native());
  const auto size = static_cast<std::uint64_t>(st.st_size);
  auto end = line_start_before(fd.get(), size, file);
  if (!end) return end.error();
  if (*end < size) {
    if (::ftruncate(fd.get(), static_cast<off_t>(*end)) != 0) {
      return errno_status(errno, "cutting the torn last line off " + file.native());
    }
  }
  std::uint64_t last_seq = 0;
  if (*end > 0) {
    auto start = line_start_before(fd.get(), *end - 1, file);
    if (!start) return start.error();
    std::string line(static_cast<std::size_t>(*end - 1 - *start), '\0');
    auto n = pread_some(fd.get(), line.data(), line.size(), *start, file);
    if (!n) return n.error();
    if (*n != line.size()) return internal_error(file.native() + ": changed while being read");
    auto event = decode_line(line, file.native() + ": the last line");
    if (!event) return event.error();
    last_seq = event->seq;
  }
  return std::unique_ptr<EventLog>(new EventLog(fd.release(), std::move(file), *end, last_seq));
}

Result<std::vector<proto::Event>> RunStore::read_events(std::string_view id,
                                                        std::uint64_t from_seq) const {
  auto dir = existing_run_dir(id);
  if (!dir) return dir.error();
  const fs::path file = *dir / kEventsFile;
  auto text = read_file(file);
  if (!text) {
    if (text.error().code() == Code::kNotFound) return std::vector<proto::Event>{};
    return text.error();
  }
  std::vector<proto::Event> events;
  std::string_view rest = *text;
  std::size_t line_number = 0;
  while (true) {
    const std::size_t newline = rest.find('\n');
    // A last line without its newline is a write a crash cut short.
    if (newline == std::string_view::npos) break;
    ++line_number;
    auto event = decode_line(rest.substr(0, newline),
                             file.native() + ": line " + std::to_string(line_number));
    if (!event) return event.error();
    if (event->seq >= from_seq) events.push_back(std::move(*event));
    rest.remove_prefix(newline + 1);
  }
  return events;
}

Status RunStore::write_job_summary(std::string_view id, const proto::JobSummary& summary) {
  auto dir = job_dir(id, summary.key);
  if (!dir) return dir.error();
  return write_file_atomic(*dir / kSummaryFile, dump(proto::encode(summary), 2) + "\n");
}

Status RunStore::write_run_summary(std::string_view id, const proto::RunSummary& summary) {
  auto dir = existing_run_dir(id);
  if (!dir) return dir.error();
  return write_file_atomic(*dir / kSummaryFile, dump(proto::encode(summary), 2) + "\n");
}

namespace {

template <class T, class Decode>
Result<T> load_summary(const fs::path& file, std::string_view what, Decode decode) {
  auto text = read_file(file);
  if (!text) {
    if (text.error().code() == Code::kNotFound) {
      return failed_precondition(std::string(what) + " has no summary yet");
    }
    return text.error();
  }
  auto json = parse_json(*text, file.native());
  if (!json) return json.error();
  auto summary = decode(*json);
  if (!summary) return internal_error(file.native() + ": " + summary.error().message());
  return summary;
}

}  // namespace

Result<proto::JobSummary> RunStore::load_job_summary(std::string_view id,
                                                     std::string_view key) const {
  if (!safe_name(key)) return bad_name("job key", key);
  auto dir = existing_run_dir(id);
  if (!dir) return dir.error();
  return load_summary<proto::JobSummary>(*dir / "jobs" / std::string(key) / kSummaryFile,
                                         "job " + std::string(key) + " of run " + std::string(id),
                                         proto::decode_job_summary);
}

Result<proto::RunSummary> RunStore::load_run_summary(std::string_view id) const {
  auto dir = existing_run_dir(id);
  if (!dir) return dir.error();
  return load_summary<proto::RunSummary>(*dir / kSummaryFile, "run " + std::string(id),
                                         proto::decode_run_summary);
}

Status RunStore::write_cid(std::string_view id, std::string_view key,
                           std::string_view container_name, std::string_view container_id) {
  if (!safe_name(container_name)) return bad_name("container name", container_name);
  auto dir = job_dir(id, key);
  if (!dir) return dir.error();
  return write_file_atomic(*dir / (std::string(container_name) + ".cid"), container_id);
}

Result<std::size_t> RunStore::prune(const RetentionPolicy& policy,
                                    std::chrono::system_clock::time_point now,
                                    const std::set<std::string>& keep) {
  auto ids = list_run_ids();
  if (!ids) return ids.error();
  const auto cutoff = std::chrono::floor<std::chrono::seconds>(now) -
                      std::chrono::duration_cast<std::chrono::seconds>(policy.days);
  const fs::path runs = state_dir_ / "runs";
  std::size_t removed = 0;
  for (std::size_t i = 0; i < ids->size(); ++i) {
    const std::string& id = (*ids)[i];
    if (keep.contains(id)) continue;
    if (i < policy.runs && run_id_time(id) >= cutoff) continue;
    // Renamed aside first, so a crash mid-way never leaves a half-removed run that looks real.
    const fs::path aside = runs / (std::string(kDeletingPrefix) + id);
    if (::rename((runs / id).c_str(), aside.c_str()) != 0) {
      return errno_status(errno, "removing run " + id);
    }
    std::error_code ec;
    fs::remove_all(aside, ec);
    if (ec) return errno_status(ec.value(), "removing " + aside.native());
    ++removed;
  }
  if (removed > 0) {
    if (auto s = fsync_dir(runs); !s.ok()) return s;
  }
  return removed;
}

}  // namespace odd::daemon
