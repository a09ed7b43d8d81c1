#include "proto/api_types.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>

namespace odd::proto {
namespace {

using namespace std::chrono_literals;

// The example of DESIGN §9, verbatim.
constexpr std::string_view kDesignJobSummary = R"({
  "run_id": "20261122-142030Z-3f2a", "job": "test", "key": "test-arch",
  "matrix": {"distro": "arch"}, "host": "local",
  "image": "odd-arch:4c1d2e3f4a5b", "image_digest": "sha256:...",
  "container_id": "...", "container_name": "odd-20261122-142030Z-3f2a-test-arch",
  "started_at": "2026-11-22T14:20:30Z", "finished_at": "2026-11-22T14:27:11Z",
  "state": "failed", "exit_code": 1, "attempts": 1, "error": null,
  "log_paths": {"stdout": "/var/lib/odd/runs/.../...-stdout-20261122-142030Z.log.zst", "stderr": "..."},
  "suites": [{"name": "20-enable-default", "status": "pass"},
             {"name": "30-disable-default", "status": "fail", "expect": "xfail"}],
  "outputs": {}
})";

Timestamp at(std::string_view text) { return parse_rfc3339(text).value(); }

std::set<std::string> keys_of(const Json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

JobStatus sample_job() {
  JobStatus j;
  j.key = "test-ubuntu-22.04";
  j.job = "test";
  j.matrix = {{"os", "ubuntu:22.04"}, {"arch", "amd64"}};
  j.host = "local";
  j.state = JobState::kRunning;
  j.attempt = 2;
  j.progress = {3, 10, "suites"};
  j.started_at = at("2026-11-22T14:20:31Z");
  j.outputs = {{"image", "odd-ubuntu:1"}};
  return j;
}

std::string error_of(const Status& status) { return status.message(); }

TEST_CASE("times are RFC 3339 UTC with whole seconds, and only that form is read") {
  const Timestamp t = at("2026-11-22T14:20:30Z");
  CHECK(format_rfc3339(t) == "2026-11-22T14:20:30Z");
  CHECK(format_rfc3339(Timestamp{}) == "1970-01-01T00:00:00Z");
  CHECK(format_rfc3339(at("2024-02-29T23:59:59Z")) == "2024-02-29T23:59:59Z");
  CHECK(format_compact_utc(t) == "20261122-142030Z");
  CHECK((t - Timestamp{}).count() == 1795357230);
  for (std::string_view bad :
       {"", "2026-11-22 14:20:30Z", "2026-11-22T14:20:30", "2026-11-22T14:20:30+00:00",
        "2026-11-22T14:20:30.5Z", "2026-02-30T00:00:00Z", "2026-11-22T24:00:00Z",
        "2026-11-22T14:60:00Z", "2026-11-22T14:20:60Z", "2026-13-01T00:00:00Z",
        "2026-11-22t14:20:30z", "+026-11-22T14:20:30Z"}) {
    auto parsed = parse_rfc3339(bad);
    REQUIRE_MESSAGE(!parsed.has_value(), bad);
    CHECK(parsed.error().message() ==
          "expected an RFC 3339 UTC time such as \"2026-11-22T14:20:30Z\", got \"" +
              std::string(bad) + "\"");
  }
}

TEST_CASE("a run id is the UTC time, seconds floored, and four lowercase hex digits") {
  const auto now = std::chrono::system_clock::time_point(at("2026-11-22T14:20:30Z")) + 999ms;
  CHECK(make_run_id(now, 0x3f2a) == "20261122-142030Z-3f2a");
  CHECK(make_run_id(now, 0x000b) == "20261122-142030Z-000b");
  CHECK(valid_run_id(make_run_id(now, 0xffff)));
  CHECK(valid_run_id("20261122-142030Z-3f2a"));
  for (std::string_view bad :
       {"", "20261122-142030Z-3F2A", "20261122-142030Z-3f2", "20261122-142030Z-3f2aa",
        "20261122-142030-3f2a0", "20261122T142030Z-3f2a", "20261322-142030Z-3f2a",
        "20261122-246030Z-3f2a", "20261122-142030Z_3f2a", "../../etc/passwd/xx",
        "20261122-142030Z-3g2a"}) {
    CHECK_MESSAGE(!valid_run_id(bad), bad);
  }
}

TEST_CASE("states convert to and from their names; an unknown name lists the accepted ones") {
  for (auto s : {RunState::kQueued, RunState::kRunning, RunState::kSucceeded, RunState::kFailed,
                 RunState::kCancelled}) {
    CHECK(parse_run_state(to_string(s)).value() == s);
  }
  for (auto s :
       {JobState::kPending, JobState::kRunning, JobState::kRetrying, JobState::kSucceeded,
        JobState::kFailed, JobState::kTimedOut, JobState::kCancelled, JobState::kSkipped}) {
    CHECK(parse_job_state(to_string(s)).value() == s);
  }
  CHECK(to_string(JobState::kTimedOut) == "timed_out");
  CHECK(error_of(parse_run_state("done").error()) ==
        "unknown run state \"done\"; expected queued, running, succeeded, failed or cancelled");
  CHECK(parse_job_state("Running").error().code() == Code::kInvalidArgument);
  CHECK(parse_suite_status("xfail").error().code() == Code::kInvalidArgument);
  CHECK(is_final(RunState::kCancelled));
  CHECK(!is_final(RunState::kRunning));
  CHECK(is_final(JobState::kSkipped));
  CHECK(!is_final(JobState::kRetrying));
}

TEST_CASE("the per-job summary always has the stable keys of DESIGN §9, and logs") {
  std::set<std::string> expected{"run_id",         "job",        "key",          "matrix",
                                 "host",           "image",      "image_digest", "container_id",
                                 "container_name", "started_at", "finished_at",  "state",
                                 "exit_code",      "attempts",   "error",        "log_paths",
                                 "suites",         "outputs"};
  CHECK(keys_of(Json::parse(kDesignJobSummary)) == expected);
  expected.insert("logs");
  JobSummary empty;
  const Json json = encode(empty);
  CHECK(keys_of(json) == expected);
  CHECK(json["logs"] == Json::array());
  CHECK(keys_of(json["log_paths"]) == std::set<std::string>{"stdout", "stderr"});
  CHECK(json["image"].is_null());
  CHECK(json["exit_code"].is_null());
  CHECK(json["started_at"].is_null());
  CHECK(json["log_paths"]["stdout"].is_null());
  CHECK(json["matrix"] == Json::object());
  CHECK(json["suites"] == Json::array());
  CHECK(json["outputs"] == Json::object());
}

TEST_CASE("the DESIGN §9 example summary decodes and re-encodes to the same JSON") {
  const Json original = Json::parse(kDesignJobSummary);
  auto summary = decode_job_summary(original);
  REQUIRE_MESSAGE(summary.has_value(), summary.error().message());
  CHECK(summary->key == "test-arch");
  CHECK(summary->matrix == MatrixValues{{"distro", "arch"}});
  CHECK(summary->state == JobState::kFailed);
  CHECK(summary->exit_code == 1);
  CHECK(!summary->error.has_value());
  CHECK(summary->finished_at == at("2026-11-22T14:27:11Z"));
  REQUIRE(summary->suites.size() == 2);
  CHECK(summary->suites[1] == SuiteResult{"30-disable-default", SuiteStatus::kFail, "xfail"});
  CHECK(summary->log_paths.stderr_path == "...");
  CHECK(summary->logs.empty());
  Json expected = original;
  expected["logs"] = Json::array();
  CHECK(encode(*summary).dump() == expected.dump());
}

TEST_CASE("a summary's logs list each step's pair with its attempt, in order") {
  JobSummary summary = decode_job_summary(Json::parse(kDesignJobSummary)).value();
  summary.logs = {{"suite", 1, "odd-r-flux-suite", "/s/a-stdout.zst", "/s/a-stderr.zst"},
                  {"exec#4", 2, "odd-r-flux-step4-2", "/s/b-stdout.zst", "/s/b-stderr.zst"}};
  const Json json = encode(summary);
  REQUIRE(json["logs"].size() == 2);
  CHECK(json["logs"][1] == Json{{"step", "exec#4"},
                                {"attempt", 2},
                                {"name", "odd-r-flux-step4-2"},
                                {"stdout", "/s/b-stdout.zst"},
                                {"stderr", "/s/b-stderr.zst"}});
  auto back = decode_job_summary(json);
  REQUIRE_MESSAGE(back.has_value(), back.error().message());
  CHECK(*back == summary);

  Json bad = json;
  bad["logs"][0]["attempt"] = "one";
  auto refused = decode_job_summary(bad);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message() ==
        "logs[0].attempt: expected an unsigned integer up to 4294967295, got string");
}

TEST_CASE("a job status and a run object round-trip, matrix order kept") {
  JobStatus job = sample_job();
  const Json json = encode(job);
  CHECK(json.dump() ==
        R"({"key":"test-ubuntu-22.04","job":"test","matrix":{"os":"ubuntu:22.04","arch":"amd64"},)"
        R"("host":"local","state":"running","attempt":2,"exit_code":null,)"
        R"("progress":{"done":3,"total":10,"label":"suites"},"started_at":"2026-11-22T14:20:31Z",)"
        R"("finished_at":null,"outputs":{"image":"odd-ubuntu:1"}})");
  CHECK(decode_job_status(json).value() == job);

  RunInfo run;
  run.id = "20261122-142030Z-3f2a";
  run.name = "distro-matrix";
  run.state = RunState::kRunning;
  run.created_at = at("2026-11-22T14:20:30Z");
  run.started_at = at("2026-11-22T14:20:30Z");
  run.caller = {1000, 1000, 4242};
  run.jobs = {job, job};
  run.jobs[1].exit_code = -1;
  const Json run_json = encode(run);
  CHECK(keys_of(run_json) == std::set<std::string>{"id", "name", "state", "created_at",
                                                   "started_at", "finished_at", "caller", "jobs"});
  CHECK(decode_run_info(run_json).value() == run);
  CHECK(decode_run_info(Json::parse(run_json.dump())).value() == run);

  const Json listed = encode(run, false);
  CHECK(!listed.contains("jobs"));
  auto back = decode_run_info(listed).value();
  CHECK(back.jobs.empty());
  CHECK(back.caller == run.caller);
}

TEST_CASE("an event merges its payload beside the envelope and reads back") {
  Event event;
  event.seq = 7;
  event.ts = at("2026-11-22T14:20:30Z");
  event.run = "20261122-142030Z-3f2a";
  event.job = "test-arch";
  event.type = kEventJobState;
  event.payload = Json{{"state", "running"}, {"attempt", 1}, {"seq", 99}};
  const Json json = encode(event);
  CHECK(json.dump() ==
        R"({"seq":7,"ts":"2026-11-22T14:20:30Z","run":"20261122-142030Z-3f2a","job":"test-arch",)"
        R"("type":"job.state","state":"running","attempt":1})");
  auto back = decode_event(json).value();
  CHECK(back.seq == 7);
  CHECK(back.job == "test-arch");
  CHECK(back.payload == Json{{"state", "running"}, {"attempt", 1}});

  Event run_level{
      1, event.ts, event.run, std::nullopt, std::string(kEventRunState), Json{{"state", "queued"}}};
  const Json run_json = encode(run_level);
  CHECK(run_json["job"].is_null());
  CHECK(decode_event(run_json).value() == run_level);
  Json without_job = run_json;
  without_job.erase("job");
  CHECK(decode_event(without_job).value() == run_level);
}

TEST_CASE("the aggregate summary round-trips and counts jobs by final state") {
  JobSummary a = decode_job_summary(Json::parse(kDesignJobSummary)).value();
  JobSummary b = a;
  b.key = "test-manjaro";
  b.state = JobState::kSucceeded;
  b.exit_code = 0;
  JobSummary c = a;
  c.state = JobState::kTimedOut;
  RunSummary s;
  s.run_id = a.run_id;
  s.name = "distro-matrix";
  s.state = RunState::kFailed;
  s.started_at = at("2026-11-22T14:20:30Z");
  s.finished_at = at("2026-11-22T14:27:11Z");
  s.duration_ms = 401'000;
  s.caller = {0, 0, 1};
  s.jobs = {a, b, c};
  s.counts = count_jobs(s.jobs);
  CHECK(s.counts == JobCounts{1, 1, 1, 0, 0});
  const Json json = encode(s);
  CHECK(keys_of(json) == std::set<std::string>{"run_id", "name", "state", "started_at",
                                               "finished_at", "duration_ms", "caller", "counts",
                                               "jobs"});
  CHECK(keys_of(json["counts"]) ==
        std::set<std::string>{"succeeded", "failed", "timed_out", "cancelled", "skipped"});
  CHECK(decode_run_summary(json).value() == s);
}

TEST_CASE("decoding names the key at fault, nested keys by their path") {
  Json summary = Json::parse(kDesignJobSummary);
  auto fails = [](const Json& json) {
    auto out = decode_job_summary(json);
    REQUIRE(!out.has_value());
    CHECK(out.error().code() == Code::kInvalidArgument);
    return out.error().message();
  };
  Json j = summary;
  j["exit_code"] = "1";
  CHECK(fails(j) == "exit_code: expected an integer or null, got string");
  j = summary;
  j["exit_code"] = 1.5;
  CHECK(fails(j) == "exit_code: expected an integer or null, got a fractional number");
  j = summary;
  j.erase("image");
  CHECK(fails(j) == "image: required key is missing");
  j = summary;
  j["attempts"] = -1;
  CHECK(fails(j) == "attempts: expected an unsigned integer up to 4294967295, got number");
  j = summary;
  j["state"] = "done";
  CHECK(fails(j).starts_with("state: unknown job state \"done\"; expected pending, "));
  j = summary;
  j["started_at"] = "yesterday";
  CHECK(fails(j) ==
        "started_at: expected an RFC 3339 UTC time such as \"2026-11-22T14:20:30Z\" "
        "or null, got \"yesterday\"");
  j = summary;
  j["log_paths"]["stdout"] = 3;
  CHECK(fails(j) == "log_paths.stdout: expected a string or null, got number");
  j = summary;
  j["suites"][1]["status"] = true;
  CHECK(fails(j) == "suites[1].status: expected a string, got boolean");
  j = summary;
  j["matrix"]["distro"] = 1;
  CHECK(fails(j) == "matrix.distro: expected a string, got number");
  j = summary;
  j["outputs"] = Json::array();
  CHECK(fails(j) == "outputs: expected an object of strings, got array");
  CHECK(fails(Json::array()) == "expected an object, got array");

  Json run = encode(RunInfo{});
  run["caller"]["pid"] = "1";
  CHECK(decode_run_info(run).error().message() ==
        "caller.pid: expected a 32-bit integer, got string");
  run = encode(RunInfo{});
  run["jobs"] = Json::array({encode(sample_job())});
  run["jobs"][0]["progress"]["done"] = nullptr;
  CHECK(decode_run_info(run).error().message() ==
        "jobs[0].progress.done: expected an unsigned integer up to 18446744073709551615, got null");
}

TEST_CASE("decoding responses ignores keys a newer daemon may add") {
  Json j = Json::parse(kDesignJobSummary);
  j["new_key"] = 1;
  CHECK(decode_job_summary(j).has_value());
}

Json submit_body() {
  return Json{{"spec_text", "version: 1\n"},
              {"vars", {{"filter", ""}}},
              {"secrets", {{"T", "x"}}},
              {"workdir", "/home/runner/work"},
              {"detach", true}};
}

TEST_CASE("a submit request round-trips, with vars, secrets and detach optional") {
  auto request = decode_submit_request(submit_body()).value();
  CHECK(request.spec_text == "version: 1\n");
  CHECK(!request.spec);
  CHECK(request.vars == OutputMap{{"filter", ""}});
  CHECK(request.detach);
  CHECK(decode_submit_request(encode(request)).value() == request);

  auto minimal = decode_submit_request(Json{{"spec", {{"version", 1}}}, {"workdir", "/w"}}).value();
  CHECK(minimal.spec == Json{{"version", 1}});
  CHECK(minimal.vars.empty());
  CHECK(!minimal.detach);
  CHECK(decode_submit_request(encode(minimal)).value() == minimal);
}

TEST_CASE("a submit request needs exactly one spec, an absolute workdir and no unknown keys") {
  auto error = [](const Json& body) {
    auto out = decode_submit_request(body);
    REQUIRE(!out.has_value());
    CHECK(out.error().code() == Code::kInvalidArgument);
    return out.error().message();
  };
  Json both = submit_body();
  both["spec"] = Json::object();
  CHECK(error(both) == "exactly one of spec and spec_text is required");
  Json neither = submit_body();
  neither.erase("spec_text");
  CHECK(error(neither) == "exactly one of spec and spec_text is required");
  Json relative = submit_body();
  relative["workdir"] = "work";
  CHECK(error(relative) == "workdir: must be an absolute path, got \"work\"");
  Json no_workdir = submit_body();
  no_workdir.erase("workdir");
  CHECK(error(no_workdir) == "workdir: required key is missing");
  Json unknown = submit_body();
  unknown["detatch"] = true;
  CHECK(error(unknown) == "detatch: unknown key");
  Json spec_array = submit_body();
  spec_array.erase("spec_text");
  spec_array["spec"] = Json::array();
  CHECK(error(spec_array) == "spec: expected an object, got array");
  Json var_number = submit_body();
  var_number["vars"]["n"] = 3;
  CHECK(error(var_number) == "vars.n: expected a string, got number");
  Json detach_string = submit_body();
  detach_string["detach"] = "yes";
  CHECK(error(detach_string) == "detach: expected true or false, got string");
}

TEST_CASE("an API error is {\"error\": {code, message, path}} with a fitting HTTP status") {
  ApiError e = ApiError::from_status(invalid_argument("expected a duration"),
                                     "jobs.test.steps[1].run.timeout");
  const Json json = encode(e);
  CHECK(json.dump() == R"({"error":{"code":"invalid_argument","message":"expected a duration",)"
                       R"("path":"jobs.test.steps[1].run.timeout"}})");
  CHECK(decode_api_error(json).value() == e);
  CHECK(e.to_status() == invalid_argument("expected a duration"));

  ApiError no_path{Code::kNotFound, "no run 20261122-142030Z-3f2a", ""};
  CHECK(encode(no_path)["error"]["path"].is_null());
  CHECK(decode_api_error(encode(no_path)).value() == no_path);
  CHECK(decode_api_error(Json{{"error", {{"code", "nope"}, {"message", "m"}}}}).error().message() ==
        "error.code: unknown error code \"nope\"");
  CHECK(decode_api_error(Json{{"message", "m"}}).error().message() ==
        "error: required key is missing");

  CHECK(http_status(Code::kOk) == 200);
  CHECK(http_status(Code::kInvalidArgument) == 400);
  CHECK(http_status(Code::kPermissionDenied) == 403);
  CHECK(http_status(Code::kNotFound) == 404);
  CHECK(http_status(Code::kAlreadyExists) == 409);
  CHECK(http_status(Code::kFailedPrecondition) == 409);
  CHECK(http_status(Code::kCancelled) == 499);
  CHECK(http_status(Code::kInternal) == 500);
  CHECK(http_status(Code::kUnavailable) == 503);
  CHECK(http_status(Code::kDeadlineExceeded) == 504);
  for (Code code : {Code::kOk, Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists,
                    Code::kFailedPrecondition, Code::kPermissionDenied, Code::kUnavailable,
                    Code::kDeadlineExceeded, Code::kCancelled, Code::kInternal}) {
    CHECK(parse_code_name(code_name(code)).value() == code);
  }
}

}  // namespace
}  // namespace odd::proto
