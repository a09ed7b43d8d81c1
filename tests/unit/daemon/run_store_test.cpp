#include "daemon/run_store.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace odd::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using proto::Json;

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/oddrs-XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  REQUIRE(out.good());
}

void append_text(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << text;
  REQUIRE(out.good());
}

std::unique_ptr<RunStore> open_store(const fs::path& dir) {
  auto store = RunStore::open(dir);
  REQUIRE(store.has_value());
  return std::move(*store);
}

proto::Timestamp at(std::string_view text) { return proto::parse_rfc3339(text).value(); }

RunRecord sample_record(std::string id) {
  RunRecord r;
  r.info.id = std::move(id);
  r.info.name = "distro-matrix";
  r.info.state = proto::RunState::kRunning;
  r.info.created_at = at("2026-11-22T14:20:30Z");
  r.info.started_at = at("2026-11-22T14:20:31Z");
  r.info.caller = {1000, 1000, 4242};
  proto::JobStatus job;
  job.key = "test-arch";
  job.job = "test";
  job.matrix = {{"distro", "arch"}};
  job.host = "local";
  job.state = proto::JobState::kRunning;
  job.attempt = 1;
  job.progress = {2, 10, "suites"};
  job.outputs = {{"image", "odd-arch:4c1d2e3f4a5b"}};
  r.info.jobs.push_back(job);
  r.spec = Json::parse(R"({"version": 1, "name": "distro-matrix", "jobs": {"test": {}}})");
  r.vars = {{"filter", "smoke"}};
  r.workdir = "/home/runner/work/repo";
  r.detach = true;
  return r;
}

proto::Event event(std::uint64_t seq, std::string run, std::string type = "job.state") {
  proto::Event e;
  e.seq = seq;
  e.ts = at("2026-11-22T14:20:30Z") + std::chrono::seconds(seq);
  e.run = std::move(run);
  e.job = "test-arch";
  e.type = std::move(type);
  e.payload = Json{{"state", "running"}, {"n", seq}};
  return e;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

constexpr std::string_view kId = "20261122-142030Z-3f2a";

TEST_CASE("a run record survives a create and load round trip") {
  TempDir dir;
  auto store = open_store(dir.path());
  RunRecord record = sample_record(std::string(kId));
  record.error = "dockerd unreachable";
  REQUIRE(store->create_run(record).ok());

  auto loaded = store->load_run(kId);
  REQUIRE(loaded.has_value());
  CHECK(*loaded == record);
  CHECK(loaded->format == 1);

  const fs::path run = dir.path() / "runs" / kId;
  CHECK(names_in(run) ==
        std::vector<std::string>{"artifacts", "events.ndjson", "jobs", "run.json"});
  const Json json = Json::parse(read_text(run / "run.json"));
  CHECK(json.at("format") == 1);
  CHECK(json.at("run") == proto::encode(record.info));
  CHECK(mode_of(run) == 0750);
  CHECK(mode_of(run / "run.json") == 0640);

  SUBCASE("a spec given as text is kept as text") {
    RunRecord text = sample_record("20261122-142030Z-0001");
    text.spec = Json();
    text.spec_text = "version: 1\nname: x\n";
    text.error.reset();
    REQUIRE(store->create_run(text).ok());
    auto back = store->load_run(text.info.id);
    REQUIRE(back.has_value());
    CHECK(*back == text);
  }
}

TEST_CASE("creating a run twice, or with a malformed id, is refused") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  const Status twice = store->create_run(sample_record(std::string(kId)));
  CHECK(twice.code() == Code::kAlreadyExists);
  CHECK(twice.message() == "run 20261122-142030Z-3f2a already exists");
  for (std::string_view bad : {"", "..", "../../etc", "20261122-142030Z-3f2a/x", "latest"}) {
    CAPTURE(bad);
    CHECK(store->create_run(sample_record(std::string(bad))).code() == Code::kInvalidArgument);
    CHECK(store->load_run(bad).error().code() == Code::kInvalidArgument);
  }
  CHECK(store->load_run("20261122-142030Z-ffff").error().code() == Code::kNotFound);
  CHECK(names_in(dir.path() / "runs") == std::vector<std::string>{std::string(kId)});
}

TEST_CASE("replacing run.json is atomic and leaves no temporary file") {
  TempDir dir;
  auto store = open_store(dir.path());
  RunRecord record = sample_record(std::string(kId));
  REQUIRE(store->create_run(record).ok());
  for (int i = 0; i < 3; ++i) {
    record.info.state = i == 2 ? proto::RunState::kSucceeded : proto::RunState::kRunning;
    record.info.finished_at = at("2026-11-22T14:30:00Z");
    record.info.jobs[0].attempt = static_cast<std::uint32_t>(i + 1);
    REQUIRE(store->write_run(record).ok());
  }
  auto loaded = store->load_run(kId);
  REQUIRE(loaded.has_value());
  CHECK(*loaded == record);
  const fs::path run = dir.path() / "runs" / kId;
  CHECK(names_in(run) ==
        std::vector<std::string>{"artifacts", "events.ndjson", "jobs", "run.json"});
  CHECK(store->write_run(sample_record("20261122-142030Z-0000")).code() == Code::kNotFound);
}

TEST_CASE("run.json of another format version or corrupt is reported, naming the file") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  const fs::path file = dir.path() / "runs" / kId / "run.json";
  Json json = Json::parse(read_text(file));
  json["format"] = 2;
  write_text(file, json.dump());
  auto newer = store->load_run(kId);
  REQUIRE_FALSE(newer.has_value());
  CHECK(newer.error().code() == Code::kFailedPrecondition);
  CHECK(newer.error().message() == file.native() + ": format 2 is not one this daemon reads (1)");

  write_text(file, "{\"format\": 1, \"run\": ");
  auto torn = store->load_run(kId);
  REQUIRE_FALSE(torn.has_value());
  CHECK(torn.error().code() == Code::kInternal);
  CHECK(torn.error().message() == file.native() + ": not valid JSON");
}

TEST_CASE("run ids are listed newest first and other names are ignored") {
  TempDir dir;
  auto store = open_store(dir.path());
  const std::vector<std::string> ids = {"20261122-142030Z-3f2a", "20251231-235959Z-0000",
                                        "20261122-142030Z-0001", "20270101-000000Z-ffff"};
  for (const auto& id : ids) REQUIRE(store->create_run(sample_record(id)).ok());
  fs::create_directory(dir.path() / "runs" / "not-a-run");
  write_text(dir.path() / "runs" / "20280101-000000Z-aaaa", "a file, not a run");
  auto listed = store->list_run_ids();
  REQUIRE(listed.has_value());
  CHECK(*listed == std::vector<std::string>{"20270101-000000Z-ffff", "20261122-142030Z-3f2a",
                                            "20261122-142030Z-0001", "20251231-235959Z-0000"});
}

TEST_CASE("events appended are read back from a sequence number on") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  auto empty = store->read_events(kId, 0);
  REQUIRE(empty.has_value());
  CHECK(empty->empty());

  auto log = store->open_event_log(kId);
  REQUIRE(log.has_value());
  CHECK((*log)->last_seq() == 0);
  std::vector<proto::Event> written;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    written.push_back(event(seq, std::string(kId)));
    REQUIRE((*log)->append(written.back()).ok());
  }
  REQUIRE((*log)->append(event(6, std::string(kId), "run.state")).ok());
  written.push_back(event(6, std::string(kId), "run.state"));
  REQUIRE((*log)->sync().ok());
  CHECK((*log)->last_seq() == 6);

  auto all = store->read_events(kId, 0);
  REQUIRE(all.has_value());
  REQUIRE(all->size() == 6);
  CHECK((*all)[0] == event(1, std::string(kId)));
  CHECK((*all)[5] == written[5]);
  auto tail = store->read_events(kId, 4);
  REQUIRE(tail.has_value());
  REQUIRE(tail->size() == 3);
  CHECK(tail->front().seq == 4);
  auto none = store->read_events(kId, 7);
  REQUIRE(none.has_value());
  CHECK(none->empty());

  // Each event is one line, exactly proto::encode of it.
  const std::string text = read_text(dir.path() / "runs" / kId / "events.ndjson");
  std::istringstream lines(text);
  std::string first;
  std::getline(lines, first);
  CHECK(Json::parse(first) == proto::encode(event(1, std::string(kId))));
  CHECK(std::count(text.begin(), text.end(), '\n') == 6);

  const Status stale = (*log)->append(event(6, std::string(kId)));
  CHECK(stale.code() == Code::kInvalidArgument);
  CHECK(store->read_events("20261122-142030Z-0000", 0).error().code() == Code::kNotFound);
}

TEST_CASE("a torn last line is ignored by readers and cut off when the log is reopened") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  const fs::path file = dir.path() / "runs" / kId / "events.ndjson";
  {
    auto log = store->open_event_log(kId);
    REQUIRE(log.has_value());
    for (std::uint64_t seq = 1; seq <= 3; ++seq) {
      REQUIRE((*log)->append(event(seq, std::string(kId))).ok());
    }
  }
  const std::string whole = read_text(file);
  const std::string torn_line = proto::encode(event(4, std::string(kId))).dump();
  append_text(file, torn_line.substr(0, torn_line.size() / 2));

  auto events = store->read_events(kId, 0);
  REQUIRE(events.has_value());
  CHECK(events->size() == 3);

  auto log = store->open_event_log(kId);
  REQUIRE(log.has_value());
  CHECK((*log)->last_seq() == 3);
  CHECK(read_text(file) == whole);
  REQUIRE((*log)->append(event(4, std::string(kId))).ok());
  auto after = store->read_events(kId, 0);
  REQUIRE(after.has_value());
  REQUIRE(after->size() == 4);
  CHECK(after->back() == event(4, std::string(kId)));
}

TEST_CASE("a complete line missing only its newline is torn too") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  const fs::path file = dir.path() / "runs" / kId / "events.ndjson";
  write_text(file, proto::encode(event(1, std::string(kId))).dump());
  auto events = store->read_events(kId, 0);
  REQUIRE(events.has_value());
  CHECK(events->empty());
  auto log = store->open_event_log(kId);
  REQUIRE(log.has_value());
  CHECK((*log)->last_seq() == 0);
  CHECK(read_text(file).empty());
}

TEST_CASE("a corrupt line before the last is reported with the file and its line number") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  const fs::path file = dir.path() / "runs" / kId / "events.ndjson";
  std::string text;
  text += proto::encode(event(1, std::string(kId))).dump() + "\n";
  text += proto::encode(event(2, std::string(kId))).dump() + "\n";
  text += "{\"seq\": 3, \"ts\": \n";
  text += proto::encode(event(4, std::string(kId))).dump() + "\n";
  write_text(file, text);
  auto events = store->read_events(kId, 0);
  REQUIRE_FALSE(events.has_value());
  CHECK(events.error().code() == Code::kInternal);
  CHECK(events.error().message() == file.native() + ": line 3: not valid JSON");

  // Valid JSON that is not an event is corrupt too.
  write_text(file, proto::encode(event(1, std::string(kId))).dump() + "\n{\"seq\": \"x\"}\n");
  auto shape = store->read_events(kId, 0);
  REQUIRE_FALSE(shape.has_value());
  CHECK(shape.error().message().starts_with(file.native() + ": line 2: "));
}

TEST_CASE("summaries are written with exactly the public keys and read back") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  CHECK(store->load_run_summary(kId).error().code() == Code::kFailedPrecondition);

  proto::JobSummary job;
  job.run_id = std::string(kId);
  job.job = "test";
  job.key = "test-arch";
  job.matrix = {{"distro", "arch"}};
  job.host = "local";
  job.image = "odd-arch:4c1d2e3f4a5b";
  job.container_name = "odd-20261122-142030Z-3f2a-test-arch";
  job.started_at = at("2026-11-22T14:20:30Z");
  job.finished_at = at("2026-11-22T14:27:11Z");
  job.state = proto::JobState::kFailed;
  job.exit_code = 1;
  job.attempts = 1;
  job.suites = {{"20-enable-default", proto::SuiteStatus::kPass, std::nullopt},
                {"30-disable-default", proto::SuiteStatus::kFail, "xfail"}};
  REQUIRE(store->write_job_summary(kId, job).ok());

  proto::RunSummary run;
  run.run_id = std::string(kId);
  run.name = "distro-matrix";
  run.state = proto::RunState::kFailed;
  run.started_at = job.started_at;
  run.finished_at = job.finished_at;
  run.duration_ms = 401000;
  run.caller = {1000, 1000, 4242};
  run.jobs = {job};
  run.counts = proto::count_jobs(run.jobs);
  REQUIRE(store->write_run_summary(kId, run).ok());

  const fs::path run_dir = dir.path() / "runs" / kId;
  const Json job_json = Json::parse(read_text(run_dir / "jobs" / "test-arch" / "summary.json"));
  CHECK(job_json == proto::encode(job));
  CHECK_FALSE(job_json.contains("format"));
  const Json run_json = Json::parse(read_text(run_dir / "summary.json"));
  CHECK(run_json == proto::encode(run));
  CHECK_FALSE(run_json.contains("format"));

  auto loaded = store->load_run_summary(kId);
  REQUIRE(loaded.has_value());
  CHECK(*loaded == run);
  auto loaded_job = store->load_job_summary(kId, "test-arch");
  REQUIRE(loaded_job.has_value());
  CHECK(*loaded_job == job);
  CHECK(store->load_job_summary(kId, "test-manjaro").error().code() == Code::kFailedPrecondition);
  CHECK(store->load_run_summary("20261122-142030Z-0000").error().code() == Code::kNotFound);
  CHECK(names_in(run_dir / "jobs" / "test-arch") == std::vector<std::string>{"summary.json"});

  proto::JobSummary escape = job;
  escape.key = "../../x";
  CHECK(store->write_job_summary(kId, escape).code() == Code::kInvalidArgument);
}

TEST_CASE("a container's id is written to <container>.cid in its job's directory") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  const std::string name = "odd-20261122-142030Z-3f2a-test-arch-2";
  REQUIRE(store->write_cid(kId, "test-arch", name, "4f2a9c").ok());
  const fs::path job = dir.path() / "runs" / kId / "jobs" / "test-arch";
  CHECK(read_text(job / (name + ".cid")) == "4f2a9c");
  CHECK(names_in(job) == std::vector<std::string>{name + ".cid"});
  CHECK(store->write_cid(kId, "test-arch", "../run", "x").code() == Code::kInvalidArgument);
  CHECK(store->write_cid(kId, "..", name, "x").code() == Code::kInvalidArgument);
  CHECK(store->write_cid("20261122-142030Z-0000", "test-arch", name, "x").code() ==
        Code::kNotFound);
}

TEST_CASE("paths of a run, its jobs, artifacts and caches") {
  TempDir dir;
  auto store = open_store(dir.path());
  REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
  CHECK(store->run_dir(kId).value() == dir.path() / "runs" / kId);
  CHECK(store->artifacts_dir(kId).value() == dir.path() / "runs" / kId / "artifacts");
  CHECK(fs::is_directory(store->artifacts_dir(kId).value()));
  auto job = store->job_dir(kId, "test-ubuntu-22.04");
  REQUIRE(job.has_value());
  CHECK(*job == dir.path() / "runs" / kId / "jobs" / "test-ubuntu-22.04");
  CHECK(fs::is_directory(*job));
  CHECK(mode_of(*job) == 0750);
  auto cache = store->cache_dir("cargo-arch_1.0");
  REQUIRE(cache.has_value());
  CHECK(*cache == dir.path() / "cache" / "cargo-arch_1.0");
  CHECK(fs::is_directory(*cache));
  auto again = store->cache_dir("cargo-arch_1.0");
  REQUIRE(again.has_value());
  CHECK(*again == *cache);
}

TEST_CASE("bad cache names are refused") {
  TempDir dir;
  auto store = open_store(dir.path());
  const std::vector<std::string_view> bad_names = {"",
                                                   ".",
                                                   "..",
                                                   "../x",
                                                   "a/b",
                                                   "a..b",
                                                   ".hidden",
                                                   "-x",
                                                   "_x",
                                                   "a b",
                                                   "cache\n",
                                                   "/abs",
                                                   std::string_view("a\0b", 3)};
  for (std::string_view bad : bad_names) {
    CAPTURE(bad);
    auto cache = store->cache_dir(bad);
    REQUIRE_FALSE(cache.has_value());
    CHECK(cache.error().code() == Code::kInvalidArgument);
  }
  CHECK(store->cache_dir(std::string(201, 'a')).error().code() == Code::kInvalidArgument);
  CHECK(names_in(dir.path() / "cache").empty());
}

TEST_CASE("prune removes runs beyond the count and older than the age, never kept ones") {
  TempDir dir;
  auto store = open_store(dir.path());
  // Newest first: two from today, one from 10 days ago, two from 40 days ago.
  const std::vector<std::string> ids = {"20261122-140000Z-0001", "20261122-130000Z-0002",
                                        "20261112-120000Z-0003", "20261013-120000Z-0004",
                                        "20261012-120000Z-0005"};
  for (const auto& id : ids) REQUIRE(store->create_run(sample_record(id)).ok());
  const auto now = std::chrono::sys_days(std::chrono::year(2026) / 11 / 22) + 15h;

  SUBCASE("by age") {
    auto removed =
        store->prune(RetentionPolicy{100, std::chrono::days(30)}, now, {"20261012-120000Z-0005"});
    REQUIRE(removed.has_value());
    CHECK(*removed == 1);
    CHECK(store->list_run_ids().value() ==
          std::vector<std::string>{ids[0], ids[1], ids[2], ids[4]});
  }
  SUBCASE("by count, kept runs counting toward it") {
    auto removed = store->prune(RetentionPolicy{2, std::chrono::days(365)}, now, {ids[3]});
    REQUIRE(removed.has_value());
    CHECK(*removed == 2);
    CHECK(store->list_run_ids().value() == std::vector<std::string>{ids[0], ids[1], ids[3]});
  }
  SUBCASE("by both") {
    auto removed = store->prune(RetentionPolicy{1, std::chrono::days(5)}, now, {ids[1]});
    REQUIRE(removed.has_value());
    CHECK(*removed == 3);
    CHECK(store->list_run_ids().value() == std::vector<std::string>{ids[0], ids[1]});
  }
  SUBCASE("nothing to do") {
    auto removed = store->prune(RetentionPolicy{5, std::chrono::days(60)}, now, {});
    REQUIRE(removed.has_value());
    CHECK(*removed == 0);
    CHECK(store->list_run_ids().value() == ids);
  }
  SUBCASE("a run exactly at the age limit stays") {
    auto removed = store->prune(RetentionPolicy{100, std::chrono::days(10)},
                                std::chrono::sys_days(std::chrono::year(2026) / 11 / 22) + 12h, {});
    REQUIRE(removed.has_value());
    CHECK(*removed == 2);
  }
  // Nothing is left aside, and other directories are untouched.
  CHECK(names_in(dir.path() / "runs").size() == store->list_run_ids().value().size());
  CHECK(fs::is_directory(dir.path() / "cache"));
}

TEST_CASE("the instance id is made once and stays the same across reopening") {
  TempDir dir;
  const fs::path state = dir.path() / "state" / "odd";
  std::string first;
  {
    auto store = open_store(state);
    first = store->instance_id();
  }
  CHECK(first.size() == 16);
  CHECK(first.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(read_text(state / "instance-id") == first + "\n");
  CHECK(mode_of(state) == 0750);
  CHECK(mode_of(state / "instance-id") == 0640);
  auto again = open_store(state);
  CHECK(again->instance_id() == first);

  TempDir other;
  CHECK(open_store(other.path())->instance_id() != first);

  write_text(state / "instance-id", "not hex\n");
  auto corrupt = RunStore::open(state);
  REQUIRE_FALSE(corrupt.has_value());
  CHECK(corrupt.error().code() == Code::kFailedPrecondition);
  CHECK(corrupt.error().message().starts_with((state / "instance-id").native()));
}

TEST_CASE("a state dir that cannot be created or written is refused with a clear error") {
  TempDir dir;
  write_text(dir.path() / "file", "x");
  auto under_file = RunStore::open(dir.path() / "file" / "state");
  REQUIRE_FALSE(under_file.has_value());
  CHECK(under_file.error().message().starts_with("state dir " +
                                                 (dir.path() / "file" / "state").native()));
  CHECK(under_file.error().message().find("--state-dir") != std::string::npos);

  CHECK(RunStore::open("relative/state").error().code() == Code::kInvalidArgument);

  if (::geteuid() != 0) {
    const fs::path locked = dir.path() / "locked";
    fs::create_directory(locked);
    fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
    auto store = RunStore::open(locked);
    REQUIRE_FALSE(store.has_value());
    CHECK(store.error().code() == Code::kPermissionDenied);
    CHECK(store.error().message().find("Permission denied") != std::string::npos);
    fs::permissions(locked, fs::perms::owner_all);
  }
}

TEST_CASE("a prune or a create a crash interrupted is finished when the store is opened") {
  TempDir dir;
  {
    auto store = open_store(dir.path());
    REQUIRE(store->create_run(sample_record(std::string(kId))).ok());
    REQUIRE(store->create_run(sample_record("20261122-142030Z-0001")).ok());
  }
  const fs::path runs = dir.path() / "runs";
  fs::rename(runs / kId, runs / (".deleting-" + std::string(kId)));
  fs::create_directories(runs / ".creating-20261122-142031Z-0002" / "jobs");
  CHECK(names_in(runs).size() == 3);
  auto store = open_store(dir.path());
  CHECK(names_in(runs) == std::vector<std::string>{"20261122-142030Z-0001"});
  CHECK(store->list_run_ids().value() == std::vector<std::string>{"20261122-142030Z-0001"});
}

}  // namespace
}  // namespace odd::daemon
