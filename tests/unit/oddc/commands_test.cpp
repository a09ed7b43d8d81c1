// oddc as a user runs it (run_main with string streams) against a canned daemon: the command
// table's help, usage errors, what `run` sends and prints and how it exits, interrupts, and the
// other commands.
#include "oddc/commands.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "oddc/exit_codes.hpp"
#include "tests/unit/oddc/fake_daemon.hpp"
#include "tests/unit/oddc/test_io.hpp"

namespace odd::oddc {
namespace {

using proto::Json;
using testing::chunk;
using testing::chunked_head;
using testing::error_body;
using testing::FakeDaemon;
using testing::http_response;
using testing::kLastChunk;
using testing::Request;
using testing::send;
using testing::Socket;
using testing::TestIo;

constexpr std::string_view kRunId = "20261122-142030Z-3f2a";
const std::string kRunPath = "/v1/runs/" + std::string(kRunId);
constexpr std::string_view kSpec = "version: 1\nname: distro-matrix\njobs: {}\n";

proto::Timestamp at(std::string_view text) { return proto::parse_rfc3339(text).value(); }

std::string event_line(std::uint64_t seq, std::optional<std::string> job, std::string_view type,
                       Json payload) {
  proto::Event e{seq,
                 at("2026-11-22T14:20:30Z"),
                 std::string(kRunId),
                 std::move(job),
                 std::string(type),
                 std::move(payload)};
  return proto::encode(e).dump() + "\n";
}

std::string run_state(std::uint64_t seq, std::string_view state) {
  return event_line(seq, std::nullopt, proto::kEventRunState, Json{{"state", state}});
}

std::string job_state(std::uint64_t seq, std::string_view key, std::string_view state,
                      Json extra = Json::object()) {
  extra["state"] = state;
  return event_line(seq, std::string(key), proto::kEventJobState, std::move(extra));
}

proto::JobSummary summary_job(std::string key, proto::JobState state,
                              std::optional<std::int64_t> exit_code) {
  proto::JobSummary j;
  j.run_id = std::string(kRunId);
  j.job = "test";
  j.key = std::move(key);
  j.host = "local";
  j.state = state;
  j.exit_code = exit_code;
  j.attempts = 1;
  j.started_at = at("2026-11-22T14:20:30Z");
  j.finished_at = at("2026-11-22T14:21:00Z");
  return j;
}

std::string summary_body(proto::RunState state, std::vector<proto::JobSummary> jobs) {
  proto::RunSummary s;
  s.run_id = std::string(kRunId);
  s.name = "distro-matrix";
  s.state = state;
  s.jobs = std::move(jobs);
  s.counts = proto::count_jobs(s.jobs);
  return proto::encode(s).dump() + "\n";
}

// The daemon side of one `oddc run`: the submit stream's events, the summary, job logs.
struct RunScript {
  std::vector<std::string> events;
  std::string summary;
  std::string log = "hello\nworld";
  // After these many events the stream waits for a cancel request, then sends `after_cancel`.
  std::optional<std::size_t> interrupt_after;
  int interrupts = 1;
  std::vector<std::string> after_cancel;
  bool break_stream = false;  // close the connection instead of ending the stream
};

FakeDaemon::Handler run_daemon(const RunScript& script, FakeDaemon*& self) {
  return [&script, &self](Request request, Socket& socket) -> asio::awaitable<void> {
    FakeDaemon& daemon = *self;
    if (request.method == "POST" && request.target == "/v1/runs") {
      const Json body = Json::parse(request.body);
      if (body.value("detach", false)) {
        co_await send(socket, http_response(201, "{\"id\": \"" + std::string(kRunId) + "\"}\n"));
        co_return;
      }
      co_await send(socket, chunked_head());
      co_await send(socket, chunk("{\"id\": \"" + std::string(kRunId) + "\"}\n"));
      for (std::size_t i = 0; i < script.events.size(); ++i) {
        co_await send(socket, chunk(script.events[i]));
        if (script.interrupt_after && *script.interrupt_after == i + 1) {
          ::kill(::getpid(), SIGHUP);
          co_await daemon.wait_until([&] { return daemon.counter.load() > 0; });
          if (script.interrupts > 1) {
            ::kill(::getpid(), SIGHUP);
            co_await testing::wait_closed(socket);
            daemon.client_left = true;
            co_return;
          }
          for (const auto& line : script.after_cancel) co_await send(socket, chunk(line));
        }
      }
      if (script.break_stream) co_return;
      co_await send(socket, kLastChunk);
    } else if (request.method == "POST" && request.target == kRunPath + "/cancel") {
      ++daemon.counter;
      co_await send(socket, http_response(200, "{\"id\": \"" + std::string(kRunId) + "\"}\n"));
    } else if (request.target == kRunPath + "/summary") {
      if (script.summary.empty()) {
        co_await send(socket, http_response(409, error_body("failed_precondition",
                                                            "the run's summary is not written")));
        co_return;
      }
      co_await send(socket, http_response(200, script.summary));
    } else if (request.target.starts_with(kRunPath + "/jobs/")) {
      co_await send(socket, chunked_head("text/plain"));
      co_await send(socket, chunk(script.log));
      co_await send(socket, kLastChunk);
    } else {
      co_await send(socket, http_response(404, error_body("not_found", "no route")));
    }
  };
}

// A daemon running `script`, with `io` pointed at it and a spec file in io's working directory.
struct RunFixture {
  explicit RunFixture(RunScript s) : script(std::move(s)), daemon(run_daemon(script, self)) {
    self = &daemon;
    io.env["ODD_SOCKET"] = daemon.socket_path();
    io.cwd.file("spec.yml", std::string(kSpec));
  }
  RunScript script;
  FakeDaemon* self = nullptr;
  FakeDaemon daemon;
  TestIo io;
};

std::vector<std::string> one_job_events(std::string_view final_state, Json final_extra) {
  return {run_state(1, "running"), job_state(2, "test-arch", "running", {{"attempt", 1}}),
          event_line(3, std::string("test-arch"), proto::kEventJobProgress,
                     {{"done", 3}, {"total", 3}, {"label", "done"}}),
          job_state(4, "test-arch", final_state, std::move(final_extra)),
          run_state(5, final_state == "succeeded" ? "succeeded" : "failed")};
}

// ---- Help and usage -------------------------------------------------------------------------

TEST_CASE("oddc --help lists every command of the table with its usage and summary") {
  TestIo io;
  CHECK(io.run({"--help"}) == 0);
  const std::string out = io.out.str();
  CHECK(out.starts_with("usage: oddc [--socket PATH] COMMAND [ARGS]...\n"));
  for (const auto& command : commands()) {
    CHECK(out.find("  " + std::string(command.name)) != std::string::npos);
    CHECK(out.find(std::string(command.usage)) != std::string::npos);
    CHECK(out.find(std::string(command.summary)) != std::string::npos);
  }
  CHECK(io.err.str().empty());
}

TEST_CASE("oddc CMD --help prints the command's usage line, summary and options") {
  for (const auto& command : commands()) {
    TestIo io;
    CHECK(io.run({std::string(command.name), "--help"}) == 0);
    std::string usage = "usage: oddc " + std::string(command.name);
    if (!command.usage.empty()) usage += " " + std::string(command.usage);
    CHECK(io.out.str().starts_with(usage + "\n\n" + std::string(command.summary) + "\n"));
    CHECK(io.out.str().find("-h,--help") != std::string::npos);
  }
  TestIo io;
  CHECK(io.run({"run", "-h"}) == 0);
  CHECK(io.out.str().find("--secret NAME") != std::string::npos);
}

TEST_CASE("usage errors exit 2 with one line on stderr naming what to fix") {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::string run_usage =
      " (usage: oddc run SPEC [-e k=v]... [-e @file.json|yaml] [--secret NAME]... [--detach] "
      "[-q|-v|-vv] [--json])";
  const std::vector<Case> cases{
      {{},
       "oddc: no command given (commands: run, ls, status, logs, events, cancel, summary, "
       "artifacts, hosts, version, ping; see oddc --help)"},
      {{"lss"},
       "oddc: unknown command \"lss\" (commands: run, ls, status, logs, events, cancel, "
       "summary, artifacts, hosts, version, ping)"},
      {{"--socket", "/x", "frobnicate"},
       "oddc: unknown command \"frobnicate\" (commands: run, "
       "ls, status, logs, events, cancel, summary, artifacts, "
       "hosts, version, ping)"},
      {{"run"}, "oddc: SPEC is required" + run_usage},
      {{"run", "-q", "-v", "spec.yml"}, "oddc: --verbose excludes --quiet" + run_usage},
      {{"run", "--json", "-vv", "spec.yml"}, "oddc: --verbose excludes --json" + run_usage},
      {{"run", "a.yml", "b.yml"},
       "oddc: The following argument was not expected: b.yml" + run_usage},
      {{"run", "--frob", "a.yml"},
       "oddc: The following argument was not expected: --frob" + run_usage},
      {{"ls", "--limit", "0"},
       "oddc: --limit: Value 0 not in range 1 to 1000 (usage: oddc ls "
       "[--state STATE] [--limit N] [--json])"},
      {{"ls", "--state", "done"},
       "oddc: --state: done not in "
       "{queued,running,succeeded,failed,cancelled} (usage: oddc ls "
       "[--state STATE] [--limit N] [--json])"},
      {{"status"}, "oddc: RUN is required (usage: oddc status RUN [--json])"},
      {{"artifacts", "r"}, "oddc: --output is required (usage: oddc artifacts RUN -o DIR)"},
      {{"events", "r", "--since", "soon"},
       "oddc: Could not convert: --since = soon "
       "(usage: oddc events RUN [-f] [--since N])"},
      {{"--socket", "", "ping"},
       "oddc: --socket: must not be empty (usage: oddc [--socket PATH] "
       "COMMAND [ARGS]...)"},
  };
  for (const auto& c : cases) {
    TestIo io;
    CHECK(io.run(c.args) == 2);
    INFO(io.err.str());
    CHECK(io.err_lines() == std::vector<std::string>{c.message});
    CHECK(io.out.str().empty());
  }
}

TEST_CASE("without a daemon every command names the socket and exits 3") {
  TestIo io;
  const std::string missing = io.cwd.path() + "/none.sock";
  CHECK(io.run({"--socket", missing, "ping"}) == 3);
  CHECK(io.err_lines() == std::vector<std::string>{"oddc: no daemon running on " + missing});
  TestIo env_io;
  env_io.env["ODD_SOCKET"] = env_io.cwd.path() + "/env.sock";
  CHECK(env_io.run({"status", std::string(kRunId)}) == 3);
  CHECK(env_io.err_lines() ==
        std::vector<std::string>{"oddc: no daemon running on " + env_io.cwd.path() + "/env.sock"});
  TestIo version_io;
  CHECK(version_io.run({"--socket", missing, "version"}) == 3);
  CHECK(version_io.out.str() == "oddc " + std::string(client_version()) + "\n");
}

// ---- run ------------------------------------------------------------------------------------

TEST_CASE("run sends the spec text, vars, secrets and workdir, and exits 0 when all succeeded") {
  RunScript script;
  script.events = one_job_events("succeeded", {{"exit_code", 0}});
  script.summary = summary_body(proto::RunState::kSucceeded,
                                {summary_job("test-arch", proto::JobState::kSucceeded, 0)});
  RunFixture f(script);
  f.io.cwd.file("vars.yaml", "filter: from-file\ncount: 3\n");
  f.io.env["TOKEN"] = "s3cret";
  CHECK(f.io.run({"run", "spec.yml", "-e", "filter=a", "-e", "@vars.yaml", "-e", "mode=x",
                  "--secret", "TOKEN"}) == 0);
  CHECK(f.io.err.str().empty());
  const auto requests = f.daemon.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].target == "/v1/runs");
  auto submitted = proto::decode_submit_request(Json::parse(requests[0].body));
  REQUIRE(submitted.has_value());
  CHECK(submitted->spec_text == std::string(kSpec));
  CHECK(submitted->vars ==
        proto::OutputMap{{"count", "3"}, {"filter", "from-file"}, {"mode", "x"}});
  CHECK(submitted->secrets == proto::OutputMap{{"TOKEN", "s3cret"}});
  CHECK(submitted->workdir == f.io.cwd.path());
  CHECK_FALSE(submitted->detach);
  CHECK(requests[1].target == kRunPath + "/summary");
  CHECK(f.io.out.str() ==
        "run 20261122-142030Z-3f2a\n"
        "run 20261122-142030Z-3f2a: running\n"
        "test-arch: running\n"
        "test-arch: 3/3 done\n"
        "test-arch: succeeded (exit 0)\n"
        "test-arch  succeeded  exit 0  1 attempt  30s  0 passed, 0 failed, 0 xfail\n"
        "distro-matrix 20261122-142030Z-3f2a: succeeded (1 succeeded)\n");
}

TEST_CASE("run reads the spec from stdin for -") {
  RunScript script;
  script.events = one_job_events("succeeded", {{"exit_code", 0}});
  script.summary = summary_body(proto::RunState::kSucceeded, {});
  RunFixture f(script);
  f.io.in.str("name: from-stdin\n");
  CHECK(f.io.run({"run", "-q", "-"}) == 0);
  auto submitted = proto::decode_submit_request(Json::parse(f.daemon.requests()[0].body));
  REQUIRE(submitted.has_value());
  CHECK(submitted->spec_text == "name: from-stdin\n");
}

TEST_CASE("run exits 1 when a test failed, 5 on an infrastructure failure, 130 when cancelled") {
  struct Case {
    proto::RunState state;
    proto::JobSummary job;
    int exit_code;
  };
  auto infra = summary_job("test-arch", proto::JobState::kFailed, std::nullopt);
  infra.error = "building odd-arch: dockerd: no space left on device";
  for (const Case& c :
       {Case{proto::RunState::kFailed, summary_job("test-arch", proto::JobState::kFailed, 1), 1},
        Case{proto::RunState::kFailed,
             summary_job("test-arch", proto::JobState::kTimedOut, std::nullopt), 1},
        Case{proto::RunState::kFailed, infra, 5},
        Case{proto::RunState::kCancelled,
             summary_job("test-arch", proto::JobState::kCancelled, std::nullopt), 130}}) {
    RunScript script;
    script.events = one_job_events("failed", {{"exit_code", 1}});
    script.events.back() = run_state(5, proto::to_string(c.state));
    script.summary = summary_body(c.state, {c.job});
    RunFixture f(script);
    CHECK(f.io.run({"run", "-q", "spec.yml"}) == c.exit_code);
    CHECK(f.io.err.str().empty());
    CHECK(f.io.out.str().ends_with(
        "distro-matrix 20261122-142030Z-3f2a: " + std::string(proto::to_string(c.state)) + " (1 " +
        (c.job.state == proto::JobState::kTimedOut ? "timed out"
                                                   : std::string(proto::to_string(c.job.state))) +
        ")\n"));
  }
}

TEST_CASE("without a summary the run's events decide the exit code") {
  RunScript script;
  script.events = one_job_events("failed", {{"exit_code", 2}});
  RunFixture f(script);
  CHECK(f.io.run({"run", "-q", "spec.yml"}) == 1);
  CHECK(f.io.err_lines() ==
        std::vector<std::string>{
            "oddc: summary of run 20261122-142030Z-3f2a: the run's summary is not written"});
  RunScript infra;
  infra.events = one_job_events("failed", {{"error", "dockerd: connection refused"}});
  RunFixture g(infra);
  CHECK(g.io.run({"run", "-q", "spec.yml"}) == 5);
}

TEST_CASE("a spec error from the daemon exits 2 with the daemon's message") {
  FakeDaemon daemon([](Request, Socket& socket) -> asio::awaitable<void> {
    co_await send(socket,
                  http_response(400, error_body("invalid_argument",
                                                "jobs.test.steps[1].run.timeout: expected a "
                                                "duration such as \\\"90s\\\", got \\\"soon\\\"")));
  });
  TestIo io;
  io.cwd.file("spec.yml", std::string(kSpec));
  CHECK(io.run({"--socket", daemon.socket_path(), "run", "spec.yml"}) == 2);
  CHECK(io.err_lines() ==
        std::vector<std::string>{"oddc: jobs.test.steps[1].run.timeout: expected a duration such "
                                 "as \"90s\", got \"soon\""});
  CHECK(io.out.str().empty());
}

TEST_CASE("run refuses a missing spec, a bad -e and an unset secret before contacting anyone") {
  TestIo io;
  io.env["ODD_SOCKET"] = io.cwd.path() + "/none.sock";
  io.cwd.file("spec.yml", std::string(kSpec));
  CHECK(io.run({"run", "nope.yml"}) == 2);
  CHECK(io.err_lines() ==
        std::vector<std::string>{"oddc: cannot read nope.yml: No such file or directory"});
  TestIo bad_var;
  bad_var.cwd.file("spec.yml", std::string(kSpec));
  CHECK(bad_var.run({"run", "spec.yml", "-e", "novalue"}) == 2);
  CHECK(bad_var.err_lines() ==
        std::vector<std::string>{"oddc: -e novalue: expected KEY=VALUE or @FILE.json|yaml"});
  TestIo secret;
  secret.cwd.file("spec.yml", std::string(kSpec));
  CHECK(secret.run({"run", "spec.yml", "--secret", "TESTER_ENV"}) == 2);
  CHECK(secret.err_lines() ==
        std::vector<std::string>{
            "oddc: --secret TESTER_ENV: environment variable TESTER_ENV is not set"});
}

TEST_CASE("run --detach prints the id (or {\"id\"} with --json) and leaves the run going") {
  RunScript script;
  RunFixture f(script);
  CHECK(f.io.run({"run", "--detach", "spec.yml"}) == 0);
  CHECK(f.io.out.str() == std::string(kRunId) + "\n");
  auto submitted = proto::decode_submit_request(Json::parse(f.daemon.requests()[0].body));
  REQUIRE(submitted.has_value());
  CHECK(submitted->detach);
  TestIo json_io;
  json_io.env["ODD_SOCKET"] = f.daemon.socket_path();
  json_io.cwd.file("spec.yml", std::string(kSpec));
  CHECK(json_io.run({"run", "--detach", "--json", "spec.yml"}) == 0);
  CHECK(json_io.out.str() == "{\"id\":\"20261122-142030Z-3f2a\"}\n");
}

TEST_CASE("run --json prints only the summary JSON as the daemon sent it") {
  RunScript script;
  script.events = one_job_events("failed", {{"exit_code", 1}});
  script.summary = summary_body(proto::RunState::kFailed,
                                {summary_job("test-arch", proto::JobState::kFailed, 1)});
  RunFixture f(script);
  CHECK(f.io.run({"run", "--json", "spec.yml"}) == 1);
  CHECK(f.io.out.str() == script.summary);
  CHECK(f.io.err.str().empty());
}

TEST_CASE("run -q prints only the final summary") {
  RunScript script;
  script.events = one_job_events("succeeded", {{"exit_code", 0}});
  script.summary = summary_body(proto::RunState::kSucceeded,
                                {summary_job("test-arch", proto::JobState::kSucceeded, 0)});
  RunFixture f(script);
  CHECK(f.io.run({"run", "-q", "spec.yml"}) == 0);
  CHECK(f.io.out.str() ==
        "test-arch  succeeded  exit 0  1 attempt  30s  0 passed, 0 failed, 0 xfail\n"
        "distro-matrix 20261122-142030Z-3f2a: succeeded (1 succeeded)\n");
}

TEST_CASE("run -v follows each running job's stdout, -vv both streams, lines prefixed by key") {
  for (const auto& [flag, stream] : {std::pair<std::string, std::string>{"-v", "stdout"},
                                     std::pair<std::string, std::string>{"-vv", "both"}}) {
    RunScript script;
    script.events = one_job_events("succeeded", {{"exit_code", 0}});
    script.summary = summary_body(proto::RunState::kSucceeded,
                                  {summary_job("test-arch", proto::JobState::kSucceeded, 0)});
    RunFixture f(script);
    CHECK(f.io.run({"run", flag, "spec.yml"}) == 0);
    CHECK(f.daemon.saw("GET", kRunPath + "/jobs/test-arch/logs?stream=" + stream + "&follow=1"));
    const std::string out = f.io.out.str();
    CHECK(out.find("[test-arch] hello\n[test-arch] world\n") != std::string::npos);
    CHECK(out.ends_with("distro-matrix 20261122-142030Z-3f2a: succeeded (1 succeeded)\n"));
  }
}

TEST_CASE("on a terminal run draws the jobs' lines in place") {
  RunScript script;
  script.events = one_job_events("succeeded", {{"exit_code", 0}});
  script.summary = summary_body(proto::RunState::kSucceeded, {});
  RunFixture f(script);
  f.io.io.tty = true;
  CHECK(f.io.run({"run", "spec.yml"}) == 0);
  const std::string out = f.io.out.str();
  CHECK(out.find("\r\x1b[1A\x1b[J") != std::string::npos);
  CHECK(out.find("test-arch  [####################]  3/3 done  succeeded (exit 0)\n") !=
        std::string::npos);
}

TEST_CASE("an interrupt cancels the run, follows it to its end and exits 130") {
  RunScript script;
  script.events = {run_state(1, "running"), job_state(2, "test-arch", "running")};
  script.interrupt_after = 2;
  script.after_cancel = {job_state(3, "test-arch", "cancelled"), run_state(4, "cancelled")};
  script.summary =
      summary_body(proto::RunState::kCancelled,
                   {summary_job("test-arch", proto::JobState::kCancelled, std::nullopt)});
  RunFixture f(script);
  CHECK(f.io.run({"run", "spec.yml"}) == 130);
  CHECK(f.daemon.saw("POST", kRunPath + "/cancel"));
  CHECK(f.io.err_lines() ==
        std::vector<std::string>{"oddc: interrupted: cancelling run 20261122-142030Z-3f2a "
                                 "(interrupt again to stop waiting)"});
  CHECK(f.io.out.str().find("test-arch: cancelled\n") != std::string::npos);
  CHECK(f.io.out.str().ends_with("distro-matrix 20261122-142030Z-3f2a: cancelled (1 cancelled)\n"));
}

TEST_CASE("a second interrupt leaves at once with 130, closing the waiting connection") {
  RunScript script;
  script.events = {run_state(1, "running"), job_state(2, "test-arch", "running")};
  script.interrupt_after = 2;
  script.interrupts = 2;
  RunFixture f(script);
  CHECK(f.io.run({"run", "spec.yml"}) == 130);
  CHECK(f.daemon.saw("POST", kRunPath + "/cancel"));
  for (int i = 0; i < 1000 && !f.daemon.client_left; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(f.daemon.client_left);
  CHECK_FALSE(f.daemon.saw("GET", kRunPath + "/summary"));
}

TEST_CASE("losing the daemon while following a run exits 3 naming the run") {
  RunScript script;
  script.events = {run_state(1, "running")};
  script.break_stream = true;
  RunFixture f(script);
  CHECK(f.io.run({"run", "-q", "spec.yml"}) == 3);
  CHECK(f.io.err_lines() ==
        std::vector<std::string>{"oddc: following run 20261122-142030Z-3f2a: the daemon on " +
                                 f.daemon.socket_path() + " closed the connection"});
}

TEST_CASE("a stream that ends before the run ended exits 3") {
  RunScript script;
  script.events = {run_state(1, "running")};
  RunFixture f(script);
  CHECK(f.io.run({"run", "-q", "spec.yml"}) == 3);
  CHECK(f.io.err_lines() ==
        std::vector<std::string>{"oddc: the daemon on " + f.daemon.socket_path() +
                                 " ended the event stream of run 20261122-142030Z-3f2a before "
                                 "the run ended"});
}

// ---- The other commands ---------------------------------------------------------------------

proto::RunInfo sample_run(std::vector<std::string> job_keys) {
  proto::RunInfo run;
  run.id = std::string(kRunId);
  run.name = "distro-matrix";
  run.state = proto::RunState::kRunning;
  run.created_at = at("2026-11-22T14:20:30Z");
  for (auto& key : job_keys) {
    proto::JobStatus job;
    job.key = std::move(key);
    job.job = "test";
    job.host = "local";
    run.jobs.push_back(job);
  }
  return run;
}

struct Canned {
  std::map<std::string, std::string> responses;  // "METHOD target" → the whole HTTP response
};

FakeDaemon::Handler canned(const Canned& c) {
  return [&c](Request request, Socket& socket) -> asio::awaitable<void> {
    const auto it = c.responses.find(request.method + " " + request.target);
    if (it == c.responses.end()) {
      co_await send(socket,
                    http_response(404, error_body("not_found", "no run " + request.target)));
      co_return;
    }
    co_await send(socket, it->second);
  };
}

TEST_CASE("ls prints a table, or with --json the run objects as sent") {
  Canned c;
  const std::string body = Json::array({proto::encode(sample_run({}), false)}).dump() + "\n";
  c.responses["GET /v1/runs?limit=5&state=running"] = http_response(200, body);
  FakeDaemon daemon(canned(c));
  TestIo io;
  io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(io.run({"ls", "--state", "running", "--limit", "5"}) == 0);
  CHECK(io.out.str() ==
        "ID                     NAME           STATE    CREATED               DURATION\n"
        "20261122-142030Z-3f2a  distro-matrix  running  2026-11-22T14:20:30Z  -\n");
  TestIo json_io;
  json_io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(json_io.run({"ls", "--state", "running", "--limit", "5", "--json"}) == 0);
  CHECK(json_io.out.str() == body);
}

TEST_CASE("status prints the run, or its JSON; an unknown run exits 4") {
  Canned c;
  const std::string body = proto::encode(sample_run({"test-arch"})).dump() + "\n";
  c.responses["GET " + kRunPath] = http_response(200, body);
  FakeDaemon daemon(canned(c));
  TestIo io;
  io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(io.run({"status", std::string(kRunId)}) == 0);
  CHECK(io.out.str().starts_with("run       20261122-142030Z-3f2a\nname      distro-matrix\n"));
  CHECK(io.out.str().find("test-arch  pending") != std::string::npos);
  TestIo json_io;
  json_io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(json_io.run({"status", "--json", std::string(kRunId)}) == 0);
  CHECK(json_io.out.str() == body);
  TestIo missing;
  missing.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(missing.run({"status", "20991122-142030Z-0000"}) == 4);
  CHECK(missing.err_lines() ==
        std::vector<std::string>{"oddc: no run /v1/runs/20991122-142030Z-0000"});
}

TEST_CASE("logs picks the only job, and lists the keys when there are several") {
  Canned c;
  c.responses["GET " + kRunPath] =
      http_response(200, proto::encode(sample_run({"test-arch"})).dump() + "\n");
  c.responses["GET " + kRunPath + "/jobs/test-arch/logs?stream=stdout"] =
      chunked_head("text/plain") + chunk("line 1\nline") + chunk(" 2\n") + kLastChunk;
  c.responses["GET " + kRunPath + "/jobs/test-x/logs?stream=stderr&follow=1"] =
      chunked_head("text/plain") + chunk("err\n") + kLastChunk;
  FakeDaemon daemon(canned(c));
  TestIo io;
  io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(io.run({"logs", std::string(kRunId)}) == 0);
  CHECK(io.out.str() == "line 1\nline 2\n");
  TestIo named;
  named.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(named.run({"logs", std::string(kRunId), "test-x", "--stderr", "-f"}) == 0);
  CHECK(named.out.str() == "err\n");

  Canned several;
  several.responses["GET " + kRunPath] = http_response(
      200, proto::encode(sample_run({"test-arch", "test-manjaro", "flux"})).dump() + "\n");
  FakeDaemon daemon2(canned(several));
  TestIo ambiguous;
  ambiguous.env["ODD_SOCKET"] = daemon2.socket_path();
  CHECK(ambiguous.run({"logs", std::string(kRunId)}) == 2);
  CHECK(ambiguous.err_lines() ==
        std::vector<std::string>{"oddc: run 20261122-142030Z-3f2a has 3 jobs; name one: "
                                 "test-arch, test-manjaro, flux"});
}

TEST_CASE("events prints the NDJSON lines as received and fails on an error line") {
  Canned c;
  const std::string e1 = run_state(1, "running");
  const std::string e2 = job_state(2, "test-arch", "running");
  c.responses["GET " + kRunPath + "/events?since=0&follow=1"] =
      chunked_head() + chunk(e1 + e2.substr(0, 10)) + chunk(e2.substr(10)) + kLastChunk;
  c.responses["GET " + kRunPath + "/events?since=7"] =
      chunked_head() + chunk(e1) + chunk(error_body("internal", "reading events.ndjson: EIO")) +
      kLastChunk;
  FakeDaemon daemon(canned(c));
  TestIo io;
  io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(io.run({"events", std::string(kRunId), "-f"}) == 0);
  CHECK(io.out.str() == e1 + e2);
  TestIo failing;
  failing.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(failing.run({"events", std::string(kRunId), "--since", "7"}) == 5);
  CHECK(failing.out.str() == e1);
  CHECK(failing.err_lines() == std::vector<std::string>{"oddc: reading events.ndjson: EIO"});
}

TEST_CASE("cancel posts to the run, summary prints the JSON, version and ping ask the daemon") {
  Canned c;
  c.responses["POST " + kRunPath + "/cancel"] = http_response(200, "{\"id\": \"x\"}\n");
  c.responses["GET " + kRunPath + "/summary"] = http_response(200, "{\"run_id\": \"x\"}");
  c.responses["GET /v1/version"] = http_response(
      200,
      R"({"version": "0.1.0", "api_version": "1", "docker": {"version": "20.10.24", "api_version": "1.41"}})");
  FakeDaemon daemon(canned(c));
  auto run = [&](std::vector<std::string> args, std::string& out) {
    TestIo io;
    io.env["ODD_SOCKET"] = daemon.socket_path();
    const int code = io.run(std::move(args));
    out = io.out.str();
    CHECK(io.err.str().empty());
    return code;
  };
  std::string out;
  CHECK(run({"cancel", std::string(kRunId)}, out) == 0);
  CHECK(out.empty());
  CHECK(daemon.saw("POST", kRunPath + "/cancel"));
  CHECK(run({"summary", std::string(kRunId)}, out) == 0);
  CHECK(out == "{\"run_id\": \"x\"}\n");
  CHECK(run({"version"}, out) == 0);
  CHECK(out == "oddc " + std::string(client_version()) +
                   "\noddd 0.1.0 (API 1)\ndockerd 20.10.24 (API 1.41)\n");
  CHECK(run({"ping"}, out) == 0);
  CHECK(out == "ok\n");
}

TEST_CASE(
    "hosts prints a line per remote host, or the health JSON as sent; exits 3 without a "
    "daemon") {
  Canned c;
  const std::string body =
      R"({"docker": {"reachable": true, "error": null}, "active_runs": 0, "hosts": {)"
      R"("tester1": {"address": "10.0.0.85:22", "state": "connected", "sessions": 2, "in_use": 1,)"
      R"( "error": null},)"
      R"("tester2": {"address": "10.0.0.86:2222", "state": "failing", "sessions": 0, "in_use": 0,)"
      R"( "error": "host tester2: SSH support is not built in yet"}}})";
  c.responses["GET /v1/health"] = http_response(200, body);
  FakeDaemon daemon(canned(c));
  TestIo io;
  io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(io.run({"hosts"}) == 0);
  CHECK(io.out.str() ==
        "HOST     ADDRESS         STATE      SESSIONS  IN USE  ERROR\n"
        "tester1  10.0.0.85:22    connected  2         1       -\n"
        "tester2  10.0.0.86:2222  failing    0         0       host tester2: SSH support is not "
        "built in yet\n");
  CHECK(io.err.str().empty());
  TestIo json_io;
  json_io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(json_io.run({"hosts", "--json"}) == 0);
  CHECK(json_io.out.str() == body + "\n");

  Canned none;
  none.responses["GET /v1/health"] = http_response(200, R"({"hosts": {}})");
  FakeDaemon empty_daemon(canned(none));
  TestIo empty;
  empty.env["ODD_SOCKET"] = empty_daemon.socket_path();
  CHECK(empty.run({"hosts"}) == 0);
  CHECK(empty.out.str() == "no remote hosts are configured\n");

  TestIo gone;
  CHECK(gone.run({"--socket", gone.cwd.path() + "/none.sock", "hosts"}) == 3);
  CHECK(gone.err_lines() ==
        std::vector<std::string>{"oddc: no daemon running on " + gone.cwd.path() + "/none.sock"});
}

std::string tar_entry(const std::string& name, char type, const std::string& data) {
  std::string h(512, '\0');
  h.replace(0, name.size(), name);
  std::snprintf(h.data() + 100, 8, "%07o", 0644u);
  std::snprintf(h.data() + 124, 12, "%011zo", data.size());
  h[156] = type;
  h.replace(257, 6, std::string("ustar\0", 6));
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (const char ch : h) sum += static_cast<unsigned char>(ch);
  std::snprintf(h.data() + 148, 8, "%06o", sum);
  return h + data + std::string((512 - data.size() % 512) % 512, '\0');
}

TEST_CASE("artifacts extracts the run's tar into the directory, refusing unsafe entries") {
  Canned c;
  const std::string good = tar_entry("logs/", '5', "") +
                           tar_entry("logs/aggregate-x.json", '0', "{}\n") +
                           std::string(1024, '\0');
  c.responses["GET " + kRunPath + "/artifacts"] = chunked_head("application/x-tar") +
                                                  chunk(good.substr(0, 700)) +
                                                  chunk(good.substr(700)) + kLastChunk;
  c.responses["GET /v1/runs/20261122-142030Z-0bad/artifacts"] =
      chunked_head("application/x-tar") + chunk(tar_entry("../evil", '0', "x")) + kLastChunk;
  FakeDaemon daemon(canned(c));
  TestIo io;
  io.env["ODD_SOCKET"] = daemon.socket_path();
  CHECK(io.run({"artifacts", std::string(kRunId), "-o", "out/arts"}) == 0);
  std::ifstream extracted(io.cwd.path() + "/out/arts/aggregate-x.json");
  CHECK(std::string(std::istreambuf_iterator<char>(extracted), {}) == "{}\n");
  TestIo bad;
  bad.env["ODD_SOCKET"] = daemon.socket_path();
  const std::string dir = bad.cwd.path() + "/bad";
  CHECK(bad.run({"artifacts", "20261122-142030Z-0bad", "-o", dir}) == 5);
  CHECK(bad.err_lines() ==
        std::vector<std::string>{"oddc: artifacts of run 20261122-142030Z-0bad: refusing tar "
                                 "entry \"../evil\": it has a \"..\" part"});
  CHECK_FALSE(std::filesystem::exists(bad.cwd.path() + "/evil"));
}

}  // namespace
}  // namespace odd::oddc
