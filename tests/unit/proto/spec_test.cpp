#include "proto/spec.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace odd::proto {
namespace {

// DESIGN §5's example, with the template references it needs declared.
constexpr std::string_view kDesignExample = R"(version: 1
name: distro-matrix                 # [a-z0-9][a-z0-9._-]*
vars:
  filter: ""
  report_url: https://reports.example/api
defaults:
  timeout: 30m
  retries: 2
  backoff: 2s
concurrency: 4
fail_fast: true
jobs:
  test:
    matrix:
      distro: [arch, manjaro, cachyos, endeavouros]
    host: local
    needs: []
    steps:
      - id: image
        build:
          context: ./test-orch
          dockerfile: docker/Dockerfile
          args: { DISTRO: "${{ matrix.distro }}" }
          repository: odd-${{ matrix.distro }}
          no_cache: false
          pull: false
      - id: suite
        run:
          image: ${{ steps.image.outputs.image }}
          cmd: ["/usr/local/bin/run-suites"]
          env:
            VERBOSE: "1"
            TEST_FILTER: ${{ vars.filter }}
            ANALYTICS_DISTRO: ${{ matrix.distro }}
          mounts:
            - ${{ workdir }}:/workspace
            - cache:cargo-${{ matrix.distro }}:/root/.cargo
          workdir: /workspace
          keep: false
  flux:
    host: tester1
    needs: [test]
    steps:
      - upload: { content: "${{ secrets.TESTER_ENV }}", dest: "odd/.env", mode: "0600" }
      - upload: { src: ./suites, dest: "odd/suites" }
      - exec:   { cmd: "cd odd && docker compose up -d", timeout: 10m }
      - exec:   { cmd: "cd odd && pytest --alluredir=raw-results", timeout: 40m }
      - download: { src: "odd/raw-results", dest: raw-results }
      - http:   { method: POST, url: "${{ vars.report_url }}", json_file: raw-results/summary.json }
)";

constexpr std::string_view kDesignExampleJson = R"({
  "version": 1, "name": "distro-matrix",
  "vars": {"filter": "", "report_url": "https://reports.example/api"},
  "defaults": {"timeout": "30m", "retries": 2, "backoff": "2s"},
  "concurrency": 4, "fail_fast": true,
  "jobs": {
    "test": {
      "matrix": {"distro": ["arch", "manjaro", "cachyos", "endeavouros"]},
      "host": "local", "needs": [],
      "steps": [
        {"id": "image", "build": {"context": "./test-orch", "dockerfile": "docker/Dockerfile",
          "args": {"DISTRO": "${{ matrix.distro }}"}, "repository": "odd-${{ matrix.distro }}",
          "no_cache": false, "pull": false}},
        {"id": "suite", "run": {"image": "${{ steps.image.outputs.image }}",
          "cmd": ["/usr/local/bin/run-suites"],
          "env": {"VERBOSE": "1", "TEST_FILTER": "${{ vars.filter }}",
                  "ANALYTICS_DISTRO": "${{ matrix.distro }}"},
          "mounts": ["${{ workdir }}:/workspace", "cache:cargo-${{ matrix.distro }}:/root/.cargo"],
          "workdir": "/workspace", "keep": false}}
      ]
    },
    "flux": {
      "host": "tester1", "needs": ["test"],
      "steps": [
        {"upload": {"content": "${{ secrets.TESTER_ENV }}", "dest": "odd/.env", "mode": "0600"}},
        {"upload": {"src": "./suites", "dest": "odd/suites"}},
        {"exec": {"cmd": "cd odd && docker compose up -d", "timeout": "10m"}},
        {"exec": {"cmd": "cd odd && pytest --alluredir=raw-results", "timeout": "40m"}},
        {"download": {"src": "odd/raw-results", "dest": "raw-results"}},
        {"http": {"method": "POST", "url": "${{ vars.report_url }}",
                  "json_file": "raw-results/summary.json"}}
      ]
    }
  }
})";

TEST_CASE("the DESIGN example parses into the typed model") {
  auto parsed = parse_spec(kDesignExample);
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().message());
  const RunSpec& spec = *parsed;
  CHECK(spec.version == 1);
  CHECK(spec.name == "distro-matrix");
  CHECK(spec.vars.at("filter").empty());
  CHECK(spec.defaults.timeout.value == Millis(30 * 60 * 1000));
  CHECK(spec.defaults.retries == 2);
  CHECK(spec.defaults.backoff.value == Millis(2000));
  CHECK(spec.concurrency == 4);
  CHECK(spec.fail_fast);
  REQUIRE(spec.jobs.size() == 2);

  const JobSpec& test = spec.jobs[0];
  CHECK(test.name == "test");
  REQUIRE(test.matrix.size() == 1);
  CHECK(test.matrix[0].key == "distro");
  CHECK(test.matrix[0].values ==
        std::vector<std::string>{"arch", "manjaro", "cachyos", "endeavouros"});
  CHECK(test.host == "local");
  CHECK(test.needs.empty());
  REQUIRE(test.steps.size() == 2);
  CHECK(test.steps[0].id == "image");
  REQUIRE(test.steps[0].kind() == StepKind::kBuild);
  const auto& build = std::get<BuildStep>(test.steps[0].body);
  CHECK(build.context == "./test-orch");
  CHECK(build.dockerfile == "docker/Dockerfile");
  CHECK(build.args.at("DISTRO") == "${{ matrix.distro }}");
  CHECK(build.repository == "odd-${{ matrix.distro }}");
  REQUIRE(test.steps[1].kind() == StepKind::kRun);
  const auto& run = std::get<RunStep>(test.steps[1].body);
  CHECK(run.image == "${{ steps.image.outputs.image }}");
  CHECK(run.cmd == Command(std::vector<std::string>{"/usr/local/bin/run-suites"}));
  CHECK(run.env.size() == 3);
  CHECK(run.mounts.size() == 2);
  CHECK(run.workdir == "/workspace");
  CHECK_FALSE(run.keep);

  const JobSpec& flux = spec.jobs[1];
  CHECK(flux.host == "tester1");
  CHECK(flux.needs == std::vector<std::string>{"test"});
  REQUIRE(flux.steps.size() == 6);
  const auto& env_upload = std::get<UploadStep>(flux.steps[0].body);
  CHECK(env_upload.content == "${{ secrets.TESTER_ENV }}");
  CHECK(env_upload.mode == 0600u);
  CHECK(std::get<UploadStep>(flux.steps[1].body).src == "./suites");
  CHECK(std::get<ExecStep>(flux.steps[2].body).cmd == "cd odd && docker compose up -d");
  REQUIRE(flux.steps[2].timeout.has_value());
  CHECK(flux.steps[2].timeout->value == Millis(10 * 60 * 1000));
  CHECK(std::get<DownloadStep>(flux.steps[4].body).dest == "raw-results");
  const auto& http = std::get<HttpStep>(flux.steps[5].body);
  CHECK(http.method == "POST");
  CHECK(http.json_file == "raw-results/summary.json");
  CHECK_FALSE(http.expect_status.has_value());
}

TEST_CASE("YAML and the equivalent JSON give the same model") {
  auto yaml = parse_spec(kDesignExample);
  auto json = parse_spec(kDesignExampleJson);
  REQUIRE_MESSAGE(json.has_value(), json.error().message());
  REQUIRE(yaml.has_value());
  CHECK(*yaml == *json);

  auto object = parse_spec_json(nlohmann::ordered_json::parse(kDesignExampleJson));
  REQUIRE(object.has_value());
  CHECK(*object == *yaml);
}

TEST_CASE("jobs keep file order; a sorted nlohmann::json object gives name order") {
  constexpr std::string_view kText =
      R"({"version": 1, "name": "r", "jobs": {"zeta": {"steps": [{"exec": {"cmd": "x"}}]},
          "alpha": {"steps": [{"exec": {"cmd": "y"}}]}}})";
  auto ordered = parse_spec(kText);
  REQUIRE(ordered.has_value());
  CHECK(ordered->jobs[0].name == "zeta");
  auto sorted = parse_spec_json(nlohmann::json::parse(kText));
  REQUIRE(sorted.has_value());
  CHECK(sorted->jobs[0].name == "alpha");
}

TEST_CASE("unset fields take their documented defaults") {
  auto parsed =
      parse_spec("version: 1\nname: r\njobs:\n  a:\n    steps:\n      - run: {image: x}\n");
  REQUIRE(parsed.has_value());
  CHECK(parsed->concurrency == kDefaultConcurrency);
  CHECK_FALSE(parsed->fail_fast);
  CHECK(parsed->defaults == Defaults{});
  const JobSpec& job = parsed->jobs[0];
  CHECK(job.host == "local");
  CHECK_FALSE(job.timeout.has_value());
  CHECK_FALSE(job.retries.has_value());
  CHECK(std::get<RunStep>(job.steps[0].body).cmd == Command{});
  CHECK_FALSE(job.steps[0].id.has_value());
}

TEST_CASE("templated durations are kept as text; literal ones are parsed") {
  auto parsed = parse_spec(R"(version: 1
name: r
defaults: {timeout: "${{ vars.t }}"}
jobs:
  a:
    timeout: 1h30m
    retries: 3
    backoff: 500ms
    steps:
      - run: {image: x, timeout: "${{ vars.step }}", cmd: "echo hi && exit 1"}
)");
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().message());
  CHECK(parsed->defaults.timeout == DurationSpec{"${{ vars.t }}", std::nullopt});
  const JobSpec& job = parsed->jobs[0];
  CHECK(job.timeout == DurationSpec{"1h30m", Millis(5'400'000)});
  CHECK(job.retries == 3);
  CHECK(job.backoff == DurationSpec{"500ms", Millis(500)});
  CHECK(job.steps[0].timeout == DurationSpec{"${{ vars.step }}", std::nullopt});
  CHECK(std::get<RunStep>(job.steps[0].body).cmd == Command(std::string("echo hi && exit 1")));
}

TEST_CASE("YAML scalars: integers and booleans are typed, floats and leading zeros stay text") {
  auto parsed = parse_spec(R"(version: 1
name: r
vars: {a: 3.10, b: 0600, c: yes, d: 1e3, e: -7, f: true}
jobs:
  a:
    matrix:
      python: [3.10, 3.9, 3]
      flag: [true, false]
    steps:
      - run: {image: x, env: {N: 5}}
)");
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().message());
  CHECK(parsed->vars.at("a") == "3.10");
  CHECK(parsed->vars.at("b") == "0600");
  CHECK(parsed->vars.at("c") == "yes");
  CHECK(parsed->vars.at("d") == "1e3");
  CHECK(parsed->vars.at("e") == "-7");
  CHECK(parsed->vars.at("f") == "true");
  CHECK(parsed->jobs[0].matrix[0].values == std::vector<std::string>{"3.10", "3.9", "3"});
  CHECK(parsed->jobs[0].matrix[1].values == std::vector<std::string>{"true", "false"});
  CHECK(std::get<RunStep>(parsed->jobs[0].steps[0].body).env.at("N") == "5");
}

TEST_CASE("needs may be a single job name, and an upload mode is read as octal") {
  auto parsed = parse_spec(R"(version: 1
name: r
jobs:
  a:
    steps: [{exec: {cmd: x}}]
  b:
    needs: a
    steps:
      - upload: {src: f, dest: g, mode: 0755}
      - http: {url: "https://x.example", expect: {status: 201}, body: "{}"}
)");
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().message());
  CHECK(parsed->jobs[1].needs == std::vector<std::string>{"a"});
  CHECK(std::get<UploadStep>(parsed->jobs[1].steps[0].body).mode == 0755u);
  CHECK(std::get<HttpStep>(parsed->jobs[1].steps[1].body).expect_status == 201);
  CHECK(std::get<HttpStep>(parsed->jobs[1].steps[1].body).method == "GET");
}

TEST_CASE("mounts are bind mounts or named caches with an absolute target") {
  CHECK(parse_mount("/src:/dst").value() == Mount{Mount::Type::kBind, "/src", "/dst", false});
  CHECK(parse_mount("./rel:/dst:ro").value() == Mount{Mount::Type::kBind, "./rel", "/dst", true});
  CHECK(parse_mount("cache:cargo-arch:/root/.cargo").value() ==
        Mount{Mount::Type::kCache, "cargo-arch", "/root/.cargo", false});
  CHECK(parse_mount("cache:pip:/root/.cache:ro").value() ==
        Mount{Mount::Type::kCache, "pip", "/root/.cache", true});
  for (const char* bad : {"", "/src", "/src:rel", ":/dst", "/a:/b:rw", "cache::/x", "a:b:c:d"}) {
    CHECK_MESSAGE(!parse_mount(bad).has_value(), bad);
  }
}

TEST_CASE("spec_error_path splits the path off a spec error") {
  CHECK(spec_error_path(invalid_argument("jobs.test.steps[1].run.timeout: expected x")) ==
        "jobs.test.steps[1].run.timeout");
  CHECK(spec_error_path(invalid_argument("jobs[\"a: b\"].host: expected x")) ==
        "jobs[\"a: b\"].host");
  CHECK(spec_error_path(invalid_argument("invalid YAML at line 1, column 2: x")).empty());
  CHECK(spec_error_path(invalid_argument("the spec is empty")).empty());
  CHECK(spec_path_key("jobs", "unit.fast") == "jobs[\"unit.fast\"]");
  CHECK(spec_path_key("", "jobs") == "jobs");
  CHECK(spec_path_index("jobs.a.steps", 3) == "jobs.a.steps[3]");
}

struct Malformed {
  const char* what;
  std::string text;
  const char* path;      // "" for errors about the text as a whole
  const char* fragment;  // part of the message after the path
};

// A valid run around one job's body (indented under `jobs: a:`).
std::string job(std::string_view body) {
  return "version: 1\nname: r\njobs:\n  a:\n" + std::string(body);
}

// A valid run around one step (a YAML flow mapping).
std::string step(std::string_view s) { return job("    steps:\n      - " + std::string(s) + "\n"); }

std::string many_keys(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += "  k" + std::to_string(i) + ": 1\n";
  return out;
}

std::vector<Malformed> malformed_specs() {
  const std::string kSteps = "    steps: [{run: {image: x}}]\n";
  return {
      // top level
      {"unknown top-level key, close", "version: 1\nname: r\njbos: {}\n", "jbos",
       "unknown key (did you mean \"jobs\"?)"},
      {"unknown top-level key, far", "version: 1\nname: r\nzzz: 1\njobs: {}\n", "zzz",
       "unknown key (expected one of: version, name"},
      {"top-level not a mapping", "- a\n- b\n", "", "expected a mapping with version"},
      {"empty text", "", "", "the spec is empty"},
      {"missing version", "name: r\njobs: {a: {steps: [{run: {image: x}}]}}\n", "version",
       "missing"},
      {"version 2", job(kSteps).replace(9, 1, "2"), "version", "expected 1"},
      {"version as string", "version: \"1\"\nname: r\njobs: {}\n", "version", "got \"1\""},
      {"missing name", "version: 1\njobs: {a: {steps: [{run: {image: x}}]}}\n", "name", "missing"},
      {"uppercase run name", "version: 1\nname: Distro\njobs: {}\n", "name",
       "[a-z0-9][a-z0-9._-]*"},
      {"run name with a space", "version: 1\nname: a b\njobs: {}\n", "name", "got \"a b\""},
      {"run name not a string", "version: 1\nname: [x]\njobs: {}\n", "name", "got a list"},
      {"missing jobs", "version: 1\nname: r\n", "jobs", "missing"},
      {"empty jobs", "version: 1\nname: r\njobs: {}\n", "jobs", "at least one job"},
      {"jobs as a list", "version: 1\nname: r\njobs: [a]\n", "jobs", "got a list"},
      {"concurrency 0", "version: 1\nname: r\nconcurrency: 0\n" + job(kSteps).substr(19),
       "concurrency", "from 1 to 1000, got 0"},
      {"concurrency as text", "version: 1\nname: r\nconcurrency: many\n" + job(kSteps).substr(19),
       "concurrency", "got \"many\""},
      {"fail_fast not a bool", "version: 1\nname: r\nfail_fast: yes\n" + job(kSteps).substr(19),
       "fail_fast", "expected true or false, got \"yes\""},
      {"run-level timeout", "version: 1\nname: r\ntimeout: 1h\njobs: {}\n", "timeout",
       "not supported yet"},
      {"vars nested", "version: 1\nname: r\nvars: {a: {b: c}}\n" + job(kSteps).substr(19), "vars.a",
       "expected a string, number or boolean, got a mapping"},
      {"vars null value", "version: 1\nname: r\nvars: {a: }\n" + job(kSteps).substr(19), "vars.a",
       "got null"},
      {"vars bad name", "version: 1\nname: r\nvars: {\"a.b\": 1}\n" + job(kSteps).substr(19),
       "vars[\"a.b\"]", "expected a name"},
      // defaults
      {"defaults unknown key", "version: 1\nname: r\ndefaults: {retires: 1}\njobs: {}\n",
       "defaults.retires", "did you mean \"retries\"?"},
      {"defaults bad timeout", "version: 1\nname: r\ndefaults: {timeout: soon}\njobs: {}\n",
       "defaults.timeout", "expected a duration such as \"90s\" or \"30m\", got \"soon\""},
      {"defaults numeric timeout", "version: 1\nname: r\ndefaults: {timeout: 90}\njobs: {}\n",
       "defaults.timeout", "got 90"},
      {"defaults retries 11", "version: 1\nname: r\ndefaults: {retries: 11}\njobs: {}\n",
       "defaults.retries", "from 0 to 10, got 11"},
      {"defaults retries negative", "version: 1\nname: r\ndefaults: {retries: -1}\njobs: {}\n",
       "defaults.retries", "from 0 to 10, got -1"},
      {"defaults not a mapping", "version: 1\nname: r\ndefaults: 5\njobs: {}\n", "defaults",
       "got 5"},
      // jobs
      {"uppercase job name", "version: 1\nname: r\njobs: {Test: {steps: []}}\n", "jobs.Test",
       "a job name must"},
      {"job name with a colon", "version: 1\nname: r\njobs: {\"a:b\": {}}\n", "jobs[\"a:b\"]",
       "a job name must"},
      {"job not a mapping", "version: 1\nname: r\njobs: {a: 1}\n", "jobs.a",
       "expected a mapping with steps"},
      {"job unknown key close", job("    stpes: []\n"), "jobs.a.stpes",
       "unknown key (did you mean \"steps\"?)"},
      {"job missing steps", job("    host: local\n"), "jobs.a.steps", "missing"},
      {"job empty steps", job("    steps: []\n"), "jobs.a.steps", "at least one step"},
      {"job labels", job("    labels: [x]\n" + kSteps), "jobs.a.labels", "not supported yet"},
      {"job uses", job("    uses: ./m.yml\n"), "jobs.a.uses", "not supported yet"},
      {"job with", job("    with: {}\n" + kSteps), "jobs.a.with", "not supported yet"},
      {"job retries 11", job("    retries: 11\n" + kSteps), "jobs.a.retries",
       "expected retries from 0 to 10, got 11"},
      {"job bad backoff", job("    backoff: 2 s\n" + kSteps), "jobs.a.backoff", "got \"2 s\""},
      {"job host empty", job("    host: \"\"\n" + kSteps), "jobs.a.host", "got \"\""},
      {"job needs unknown", job(kSteps + "    needs: [b]\n"), "jobs.a.needs[0]",
       "unknown job \"b\""},
      {"job needs close",
       job(kSteps) + "  build:\n" + kSteps + "  c:\n    needs: [buidl]\n" + kSteps,
       "jobs.c.needs[0]", "did you mean \"build\"?"},
      {"job needs self", job(kSteps + "    needs: [a]\n"), "jobs.a.needs", "cycle a -> a"},
      {"needs cycle of 2", job(kSteps + "    needs: [b]\n") + "  b:\n    needs: [a]\n" + kSteps,
       "jobs.a.needs", "cycle a -> b -> a"},
      {"needs cycle of 3",
       job(kSteps + "    needs: [b]\n") + "  b:\n    needs: [c]\n" + kSteps +
           "  c:\n    needs: [a]\n" + kSteps,
       "jobs.a.needs", "cycle a -> b -> c -> a"},
      {"needs cycle behind a root",
       "version: 1\nname: r\njobs:\n  z:\n    needs: [b]\n" + kSteps + "  b:\n    needs: [c]\n" +
           kSteps + "  c:\n    needs: [b]\n" + kSteps,
       "jobs.b.needs", "cycle b -> c -> b"},
      {"needs duplicate", job(kSteps + "    needs: [b, b]\n") + "  b:\n" + kSteps,
       "jobs.a.needs[1]", "duplicate job \"b\""},
      {"needs as a mapping", job(kSteps + "    needs: {b: 1}\n"), "jobs.a.needs",
       "expected a list of job names"},
      // matrix
      {"matrix non-scalar value", job("    matrix: {os: [[a]]}\n" + kSteps), "jobs.a.matrix.os[0]",
       "expected a string, number or boolean, got a list"},
      {"matrix null value", job("    matrix: {os: [a, ~]}\n" + kSteps), "jobs.a.matrix.os[1]",
       "got null"},
      {"matrix empty list", job("    matrix: {os: []}\n" + kSteps), "jobs.a.matrix.os",
       "at least one value"},
      {"matrix not a list", job("    matrix: {os: arch}\n" + kSteps), "jobs.a.matrix.os",
       "expected a list of values, got \"arch\""},
      {"matrix key not an identifier", job("    matrix: {\"os name\": [a]}\n" + kSteps),
       "jobs.a.matrix[\"os name\"]", "expected a matrix key"},
      {"matrix include", job("    matrix: {os: [a], include: []}\n" + kSteps),
       "jobs.a.matrix.include", "not supported yet"},
      {"matrix exclude", job("    matrix: {exclude: []}\n" + kSteps), "jobs.a.matrix.exclude",
       "not supported yet"},
      {"matrix empty mapping", job("    matrix: {}\n" + kSteps), "jobs.a.matrix",
       "expected a mapping of matrix keys"},
      {"matrix empty string", job("    matrix: {os: [\"\"]}\n" + kSteps), "jobs.a.matrix.os[0]",
       "non-empty"},
      {"matrix duplicate sanitised keys",
       job("    matrix: {os: [\"ubuntu:22.04\", ubuntu/22.04]}\n" + kSteps), "jobs.a.matrix",
       "\"a-ubuntu-22.04\" of a {os: \"ubuntu/22.04\"} is also the key of a {os: "
       "\"ubuntu:22.04\"}"},
      {"matrix key collides with another job",
       job("    matrix: {os: [b]}\n" + kSteps) + "  a-b:\n" + kSteps, "jobs.a-b",
       "also the key of a {os: \"b\"}"},
      {"matrix too large",
       job("    matrix: {a: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17], b: "
           "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}\n" +
           kSteps),
       "jobs.a.matrix", "at most 256 combinations per job, got 272"},
      // steps
      {"step not a mapping", job("    steps: [run]\n"), "jobs.a.steps[0]", "got \"run\""},
      {"step with no kind", step("{id: x}"), "jobs.a.steps[0]",
       "exactly one of build, run, exec, upload, download, http, got none"},
      {"step with two kinds", step("{run: {image: x}, exec: {cmd: y}}"), "jobs.a.steps[0]",
       "got both \"run\" and \"exec\""},
      {"step unknown key", step("{rnu: {image: x}}"), "jobs.a.steps[0].rnu",
       "did you mean \"run\"?"},
      {"step timeout beside the kind", step("{timeout: 1m, run: {image: x}}"),
       "jobs.a.steps[0].timeout", "inside its kind"},
      {"step if", step("{if: x, run: {image: x}}"), "jobs.a.steps[0].if", "not supported yet"},
      {"step always", step("{always: true, exec: {cmd: x}}"), "jobs.a.steps[0].always",
       "not supported yet"},
      {"step uses", step("{uses: ./m.yml}"), "jobs.a.steps[0].uses", "not supported yet"},
      {"step bad id", step("{id: 1x, run: {image: x}}"), "jobs.a.steps[0].id",
       "expected an id matching"},
      {"step duplicate id",
       job("    steps:\n      - {id: x, run: {image: x}}\n      - {id: x, exec: {cmd: y}}\n"),
       "jobs.a.steps[1].id", "duplicate step id \"x\" (also steps[0])"},
      {"kind body not a mapping", step("{run: alpine}"), "jobs.a.steps[0].run",
       "expected a mapping, got \"alpine\""},
      // run
      {"run without image", step("{run: {cmd: [x]}}"), "jobs.a.steps[0].run.image", "missing"},
      {"run bad timeout",
       job("    steps:\n      - {run: {image: x}}\n      - {run: {image: x, timeout: soon}}\n"),
       "jobs.a.steps[1].run.timeout",
       "expected a duration such as \"90s\" or \"30m\", got \"soon\""},
      {"run unknown key", step("{run: {image: x, evn: {}}}"), "jobs.a.steps[0].run.evn",
       "did you mean \"env\"?"},
      {"run network", step("{run: {image: x, network: none}}"), "jobs.a.steps[0].run.network",
       "not supported yet"},
      {"run resources", step("{run: {image: x, resources: {cpus: 1}}}"),
       "jobs.a.steps[0].run.resources", "not supported yet"},
      {"run user", step("{run: {image: x, user: root}}"), "jobs.a.steps[0].run.user",
       "not supported yet"},
      {"run artifacts", step("{run: {image: x, artifacts: [a]}}"), "jobs.a.steps[0].run.artifacts",
       "not supported yet"},
      {"run secrets", step("{run: {image: x, secrets: [a]}}"), "jobs.a.steps[0].run.secrets",
       "not supported yet"},
      {"run env_secrets", step("{run: {image: x, env_secrets: {}}}"),
       "jobs.a.steps[0].run.env_secrets", "not supported yet"},
      {"run cmd of numbers", step("{run: {image: x, cmd: [ls, 5]}}"), "jobs.a.steps[0].run.cmd[1]",
       "expected a string, got 5 (quote it)"},
      {"run cmd as a mapping", step("{run: {image: x, cmd: {a: b}}}"), "jobs.a.steps[0].run.cmd",
       "expected a list of strings or a string"},
      {"run env bad name", step("{run: {image: x, env: {\"A-B\": 1}}}"),
       "jobs.a.steps[0].run.env.A-B", "expected a name"},
      {"run env list", step("{run: {image: x, env: [A=1]}}"), "jobs.a.steps[0].run.env",
       "expected a mapping of names to values, got a list"},
      {"run bad mount", step("{run: {image: x, mounts: [\"/src\"]}}"),
       "jobs.a.steps[0].run.mounts[0]", "expected a mount"},
      {"run relative mount target", step("{run: {image: x, mounts: [\"/a:b\"]}}"),
       "jobs.a.steps[0].run.mounts[0]", "absolute dst"},
      {"run mounts as a string", step("{run: {image: x, mounts: \"/a:/b\"}}"),
       "jobs.a.steps[0].run.mounts", "got \"/a:/b\""},
      {"run relative workdir", step("{run: {image: x, workdir: work}}"),
       "jobs.a.steps[0].run.workdir", "absolute path"},
      {"run keep as text", step("{run: {image: x, keep: \"true\"}}"), "jobs.a.steps[0].run.keep",
       "expected true or false, got \"true\""},
      {"run image empty", step("{run: {image: \"\"}}"), "jobs.a.steps[0].run.image", "got \"\""},
      // build
      {"build without context", step("{build: {repository: r}}"), "jobs.a.steps[0].build.context",
       "missing"},
      {"build without repository", step("{build: {context: .}}"),
       "jobs.a.steps[0].build.repository", "missing"},
      {"build args nested", step("{build: {context: ., repository: r, args: {A: [1]}}}"),
       "jobs.a.steps[0].build.args.A", "got a list"},
      {"build no_cache as number", step("{build: {context: ., repository: r, no_cache: 1}}"),
       "jobs.a.steps[0].build.no_cache", "expected true or false, got 1"},
      {"build unknown key", step("{build: {context: ., repository: r, dockerfil: D}}"),
       "jobs.a.steps[0].build.dockerfil", "did you mean \"dockerfile\"?"},
      // exec
      {"exec without cmd", step("{exec: {timeout: 1m}}"), "jobs.a.steps[0].exec.cmd", "missing"},
      {"exec cmd as a list", step("{exec: {cmd: [ls]}}"), "jobs.a.steps[0].exec.cmd",
       "a shell command line as a string, got a list"},
      {"exec bad timeout", step("{exec: {cmd: ls, timeout: 0s}}"), "jobs.a.steps[0].exec.timeout",
       "got \"0s\""},
      // upload, download
      {"upload without dest", step("{upload: {src: a}}"), "jobs.a.steps[0].upload.dest", "missing"},
      {"upload with src and content", step("{upload: {src: a, content: b, dest: c}}"),
       "jobs.a.steps[0].upload.content", "either src or content, got both"},
      {"upload with neither", step("{upload: {dest: c}}"), "jobs.a.steps[0].upload", "got neither"},
      {"upload bad mode", step("{upload: {src: a, dest: c, mode: \"0900\"}}"),
       "jobs.a.steps[0].upload.mode", "octal string"},
      {"upload numeric mode", step("{upload: {src: a, dest: c, mode: 600}}"),
       "jobs.a.steps[0].upload.mode", "got 600"},
      {"download without src", step("{download: {dest: a}}"), "jobs.a.steps[0].download.src",
       "missing"},
      {"download escaping the artifacts", step("{download: {src: a, dest: ../x}}"),
       "jobs.a.steps[0].download.dest", "relative path inside the run's artifacts"},
      // http
      {"http without url", step("{http: {method: POST}}"), "jobs.a.steps[0].http.url", "missing"},
      {"http bad method", step("{http: {method: post, url: \"https://x\"}}"),
       "jobs.a.steps[0].http.method", "expected GET, HEAD, POST, PUT, PATCH or DELETE"},
      {"http non-http url", step("{http: {url: \"ftp://x\"}}"), "jobs.a.steps[0].http.url",
       "http:// or https://"},
      {"http json_file and body", step("{http: {url: \"https://x\", json_file: a, body: b}}"),
       "jobs.a.steps[0].http.body", "either json_file or body, got both"},
      {"http expect status out of range",
       step("{http: {url: \"https://x\", expect: {status: 99}}}"),
       "jobs.a.steps[0].http.expect.status", "from 100 to 599, got 99"},
      {"http expect unknown key", step("{http: {url: \"https://x\", expect: {stauts: 200}}}"),
       "jobs.a.steps[0].http.expect.stauts", "did you mean \"status\"?"},
      // syntax and bounds
      {"YAML syntax error", "version: 1\nname: r\njobs: {a: [}\n", "", "invalid YAML at line 3"},
      {"YAML bad indentation", "version: 1\n  name: r\n", "", "invalid YAML at line"},
      {"YAML duplicate key", "version: 1\nname: r\nname: s\njobs: {}\n", "name", "duplicate key"},
      {"YAML two documents", "version: 1\n---\nversion: 1\n", "",
       "invalid YAML at line 2, column 1: expected a single document"},
      {"stray comma (an endless loop in yaml-cpp's LoadAll)", ",", "", "invalid YAML at line 1"},
      {"stray comma after a list", "- a\n,\n", "", "invalid YAML at line 2, column 1"},
      {"YAML unknown tag", "version: !custom 1\nname: r\n", "version", "unsupported YAML tag"},
      {"JSON syntax error", "{\"version\": 1,\n \"name\": }", "", "invalid JSON at line 2"},
      {"JSON duplicate key",
       R"({"version": 1, "name": "r", "jobs": {"a": {"steps": [{"run": {"image": "x", "image": "y"}}]}}})",
       "jobs.a.steps[0].run.image", "duplicate key"},
      {"JSON duplicate key inside a list",
       R"({"version": 1, "jobs": {"a": {"matrix": {"os": [1, {"k": 1, "k": 2}]}}}})",
       "jobs.a.matrix.os[1].k", "duplicate key"},
      {"YAML mapping with too many keys", "version: 1\nname: r\nvars:\n" + many_keys(1001), "vars",
       "at most 1000 keys"},
      {"JSON number out of range", R"({"version": 1e999})", "", "invalid JSON: number overflow"},
      {"JSON trailing comma", "{\"version\": 1,}", "", "invalid JSON at line 1"},
      {"too large", std::string(kMaxSpecBytes + 1, '#'), "", "more than the limit of 1048576"},
      {"too deep", std::string(100, '[') + std::string(100, ']'), "", "nested deeper than 64"},
      {"invalid UTF-8", "version: 1\nname: \xff\n", "", "not valid UTF-8 at line 2, column 7"},
      {"alias bomb",
       "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, "
       "*c]\n"
       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, "
       "*e]\n",
       "", "expands to more than"},
  };
}

TEST_CASE("each malformed spec is refused with the path of its first error") {
  const auto cases = malformed_specs();
  CHECK(cases.size() >= 50);
  for (const auto& c : cases) {
    const std::string what = c.what;
    CAPTURE(what);
    auto parsed = parse_spec(c.text);
    REQUIRE_MESSAGE(!parsed.has_value(), c.what);
    const Status& error = parsed.error();
    const std::string message = error.message();
    CAPTURE(message);
    CHECK(error.code() == Code::kInvalidArgument);
    CHECK(spec_error_path(error) == c.path);
    const std::string rest = std::string(c.path).empty()
                                 ? error.message()
                                 : error.message().substr(std::string(c.path).size() + 2);
    CHECK_MESSAGE(rest.find(c.fragment) != std::string::npos, c.fragment);
  }
}

TEST_CASE("the example error message from DESIGN §5 is produced word for word") {
  auto parsed = parse_spec(R"(version: 1
name: r
jobs:
  test:
    steps:
      - exec: {cmd: x}
      - run: {image: x, timeout: soon}
)");
  REQUIRE(!parsed.has_value());
  CHECK(parsed.error().message() ==
        "jobs.test.steps[1].run.timeout: expected a duration such as \"90s\" or \"30m\", got "
        "\"soon\"");
}

TEST_CASE("a JSON object from the control API is validated like text") {
  auto spec = nlohmann::json::parse(
      R"({"version": 1, "name": "r", "jobs": {"a": {"steps": [{"run": {"image": 5}}]}}})");
  auto parsed = parse_spec_json(spec);
  REQUIRE(!parsed.has_value());
  CHECK(spec_error_path(parsed.error()) == "jobs.a.steps[0].run.image");
  CHECK(parse_spec_json(nlohmann::json::array()).error().message().find("expected a mapping") == 0);
}

TEST_CASE("a JSON object from the control API is bounded in nesting and keys") {
  nlohmann::json deep = 1;
  for (int i = 0; i < 200; ++i) deep = nlohmann::json::array({deep});
  auto parsed = parse_spec_json(deep);
  REQUIRE(!parsed.has_value());
  CHECK(parsed.error().message().find("nested deeper than 64") != std::string::npos);

  nlohmann::json wide = {{"version", 1}, {"vars", nlohmann::json::object()}};
  for (int i = 0; i < 1001; ++i) wide["vars"]["k" + std::to_string(i)] = i;
  parsed = parse_spec_json(wide);
  REQUIRE(!parsed.has_value());
  CHECK(spec_error_path(parsed.error()) == "vars");
}

TEST_CASE("long strings in messages are cut") {
  auto parsed = parse_spec("version: 1\nname: " + std::string(500, 'A') + "\njobs: {}\n");
  REQUIRE(!parsed.has_value());
  CHECK(parsed.error().message().size() < 250);
  CHECK(parsed.error().message().find("...\"") != std::string::npos);
}

TEST_CASE("a document that is not a spec is read with the spec's typing and bounds") {
  auto yaml = parse_document("filter: smoke\nversion: 3.10\nmode: 0600\ncount: 3\nnone:\n");
  REQUIRE(yaml.has_value());
  CHECK(*yaml == nlohmann::ordered_json{{"filter", "smoke"},
                                        {"version", "3.10"},
                                        {"mode", "0600"},
                                        {"count", 3},
                                        {"none", nullptr}});
  auto json = parse_document(R"({"a": [1, true]})");
  REQUIRE(json.has_value());
  CHECK(*json == nlohmann::ordered_json{{"a", {1, true}}});
  auto empty = parse_document("# only a comment\n");
  REQUIRE(empty.has_value());
  CHECK(empty->is_null());
  auto bad = parse_document("a: [1\n");
  REQUIRE(!bad.has_value());
  CHECK(bad.error().message().find("invalid YAML at line ") == 0);
  auto big = parse_document(std::string(kMaxSpecBytes + 1, '#'));
  REQUIRE(!big.has_value());
  CHECK(big.error().message().find("the document is 1048577 bytes") == 0);
  CHECK(parse_spec("# only a comment\n").error().message() == "the spec is empty");
}

}  // namespace
}  // namespace odd::proto

namespace odd::proto {

TEST_CASE("references are checked before a run: each unknown one is named by its spec path") {
  auto spec = parse_spec(R"(
version: 1
name: refs
vars: { flavour: mint }
jobs:
  build:
    matrix: { distro: [arch] }
    steps:
      - id: image
        build: { context: ., repository: "odd-${{ matrix.distro }}-${{ vars.flavour }}" }
      - run:
          image: "${{ steps.image.outputs.image }}"
          cmd: ["echo", "${{ secrets.TOKEN }}", "${{ run.id }}", "${{ workdir }}"]
  test:
    needs: [build]
    timeout: "${{ vars.flavour }}"
    steps:
      - run: { image: "${{ needs.build.outputs.image }}", env: { A: "$${{ literal }}" } }
)");
  REQUIRE(spec.has_value());
  const std::set<std::string, std::less<>> vars{"flavour"};
  const std::set<std::string, std::less<>> secrets{"TOKEN"};
  CHECK(check_spec_references(*spec, vars, secrets).ok());

  const Status no_secret = check_spec_references(*spec, vars, {});
  CHECK(no_secret.code() == Code::kInvalidArgument);
  CHECK(spec_error_path(no_secret) == "jobs.build.steps[1].run.cmd[1]");

  const Status no_var = check_spec_references(*spec, {}, secrets);
  CHECK(spec_error_path(no_var) == "jobs.build.steps[0].build.repository");
  CHECK(no_var.message().find("flavour") != std::string::npos);

  auto later_step = parse_spec(R"(
version: 1
name: order
jobs:
  job:
    steps:
      - run: { image: "${{ steps.second.outputs.image }}" }
      - id: second
        run: { image: busybox }
)");
  REQUIRE(later_step.has_value());
  CHECK(spec_error_path(check_spec_references(*later_step, {}, {})) ==
        "jobs.job.steps[0].run.image");

  auto not_needed = parse_spec(R"(
version: 1
name: needs
jobs:
  a:
    steps: [ { run: { image: busybox } } ]
  b:
    steps: [ { run: { image: busybox, env: { X: "${{ needs.a.outputs.x }}" } } } ]
)");
  REQUIRE(not_needed.has_value());
  CHECK(spec_error_path(check_spec_references(*not_needed, {}, {})) == "jobs.b.steps[0].run.env.X");
}

}  // namespace odd::proto
