#pragma once
// The run spec (DESIGN §5): its typed model and the one parser and validator that reads it from
// YAML or JSON text, or from a JSON object the control API received. Values only, no I/O; any
// thread may call these functions.
// Strings that hold `${{ ... }}` are kept verbatim: templating happens later (proto/template), so
// only what can be checked before templating is checked here.

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.hpp"
#include "proto/duration.hpp"
#include "proto/template.hpp"

namespace odd::proto {

// Bounds on what one spec may ask for; each is an invalid_argument spec error when exceeded.
inline constexpr std::size_t kMaxSpecBytes = 1024 * 1024;
inline constexpr std::size_t kMaxJobInstances = 1000;  // after matrix expansion, whole run
inline constexpr std::size_t kMaxMatrixProduct = 256;  // instances of one job
inline constexpr std::size_t kMaxNesting = 64;         // YAML/JSON nesting depth of the text
inline constexpr std::size_t kMaxKeys = 1000;          // keys of one mapping
inline constexpr std::size_t kMaxNameLength = 63;      // run and job names
inline constexpr int kMaxRetries = 10;
inline constexpr int kDefaultConcurrency = 4;

// A duration as written: a literal ("90s", `value` set) or a template ("${{ vars.t }}", `value`
// unset, to be read with parse_duration after templating).
struct DurationSpec {
  std::string text;
  std::optional<Millis> value;

  friend bool operator==(const DurationSpec&, const DurationSpec&) = default;
};

// `retries` and `backoff` of one job; `timeout` is the deadline of one attempt.
struct Defaults {
  DurationSpec timeout{"30m", Millis(30 * 60 * 1000)};
  int retries = 0;
  DurationSpec backoff{"2s", Millis(2000)};

  friend bool operator==(const Defaults&, const Defaults&) = default;
};

// A container or exec command: a list is an argv run as is; a string is a shell command line.
// An empty argv means the image's own command.
using Command = std::variant<std::vector<std::string>, std::string>;

struct BuildStep {
  std::string context;     // required
  std::string dockerfile;  // empty: "Dockerfile" in the context
  std::map<std::string, std::string> args;
  std::string repository;  // required; image = <repository>:<content hash>
  bool no_cache = false;
  bool pull = false;
  std::string target;
  std::string platform;

  friend bool operator==(const BuildStep&, const BuildStep&) = default;
};

struct RunStep {
  std::string image;  // required
  Command cmd;
  std::map<std::string, std::string> env;
  // As written: "src:dst[:ro]" or "cache:NAME:dst[:ro]". Literal ones are checked here with
  // parse_mount; templated ones must be read with parse_mount after templating.
  std::vector<std::string> mounts;
  std::string workdir;
  bool keep = false;
  bool retry_on_exit = false;

  friend bool operator==(const RunStep&, const RunStep&) = default;
};

struct ExecStep {
  std::string cmd;  // required; a shell command line on the job's host
  std::map<std::string, std::string> env;

  friend bool operator==(const ExecStep&, const ExecStep&) = default;
};

struct UploadStep {
  std::optional<std::string> src;      // a file or directory tree; exactly one of src, content
  std::optional<std::string> content;  // the file's bytes
  std::string dest;                    // required
  std::optional<unsigned> mode;        // written as an octal string: "0600"

  friend bool operator==(const UploadStep&, const UploadStep&) = default;
};

struct DownloadStep {
  std::string src;   // required
  std::string dest;  // required, inside the run's artifacts

  friend bool operator==(const DownloadStep&, const DownloadStep&) = default;
};

struct HttpStep {
  std::string method = "GET";            // GET, HEAD, POST, PUT, PATCH or DELETE
  std::string url;                       // required
  std::optional<std::string> json_file;  // at most one of json_file, body
  std::optional<std::string> body;
  std::optional<int> expect_status;  // `expect: {status: N}`; unset: any 2xx

  friend bool operator==(const HttpStep&, const HttpStep&) = default;
};

enum class StepKind { kBuild, kRun, kExec, kUpload, kDownload, kHttp };

// "build", "run", ...: the step's key in the spec.
std::string_view step_kind_name(StepKind kind);

struct StepSpec {
  std::optional<std::string> id;        // [A-Za-z_][A-Za-z0-9_-]*, unique in its job
  std::optional<DurationSpec> timeout;  // written inside the kind: `run: {timeout: 10m}`
  std::variant<BuildStep, RunStep, ExecStep, UploadStep, DownloadStep, HttpStep> body;

  StepKind kind() const { return static_cast<StepKind>(body.index()); }
  friend bool operator==(const StepSpec&, const StepSpec&) = default;
};

// One matrix key and its values, stringified ("3" for 3, "true" for true), in declared order.
struct MatrixAxis {
  std::string key;
  std::vector<std::string> values;

  friend bool operator==(const MatrixAxis&, const MatrixAxis&) = default;
};

struct JobSpec {
  std::string name;
  std::vector<MatrixAxis> matrix;  // empty: one instance
  std::string host = "local";
  std::vector<std::string> needs;
  std::vector<StepSpec> steps;  // at least one
  // Unset: RunSpec::defaults applies.
  std::optional<DurationSpec> timeout;
  std::optional<int> retries;
  std::optional<DurationSpec> backoff;

  friend bool operator==(const JobSpec&, const JobSpec&) = default;
};

struct RunSpec {
  int version = 1;
  std::string name;
  std::map<std::string, std::string> vars;
  Defaults defaults;
  int concurrency = kDefaultConcurrency;
  bool fail_fast = false;
  std::vector<JobSpec> jobs;  // in the order of the text (or of the object's keys)

  friend bool operator==(const RunSpec&, const RunSpec&) = default;
};

// Parses and validates a spec given as YAML, or as JSON when its first non-blank byte is '{'.
// invalid_argument for anything wrong, its message "<path>: <what was expected>, got <what>"
// (see spec_error_path); syntax errors name the line and column. YAML is read as one document
// with the 1.2 core schema for null, booleans and integers; every other scalar stays a string
// (no field is a float, and a matrix value 3.10 stays "3.10"; 0600 stays "0600").
Result<RunSpec> parse_spec(std::string_view text);

// Reads YAML or JSON text into JSON with parse_spec's bounds and scalar typing, without reading
// it as a spec: for other files a user writes (oddc's -e @vars.yaml). An empty document is null.
// invalid_argument naming the line and column, or the key path, at fault.
Result<nlohmann::ordered_json> parse_document(std::string_view text);

// The same validation over a JSON value. nlohmann::json sorts object keys, so jobs come out in
// name order; an ordered_json keeps the order it was built in.
Result<RunSpec> parse_spec_json(const nlohmann::json& spec);
Result<RunSpec> parse_spec_json(const nlohmann::ordered_json& spec);

// The path a spec error names ("jobs.test.steps[1].run.timeout"), or "" when the error is about
// the text as a whole (a syntax error, the size). Paths are keys joined by '.', list indices in
// brackets, and keys other than [A-Za-z0-9_-]+ as ["json-quoted"]: `jobs["unit.fast"].host`.
std::string spec_error_path(const Status& status);

// The path of `key` inside the value at `parent` and of item `index` of the list at `parent`.
std::string spec_path_key(std::string_view parent, std::string_view key);
std::string spec_path_index(std::string_view parent, std::size_t index);

// Checks every `${{ }}` of `spec` before anything runs: each expression is well formed and names
// a var of `vars`, a key of its job's matrix, a secret of `secrets`, an earlier step id of its
// job, or a job in its `needs` (step outputs are only known at run time). invalid_argument
// "<path>: <what is wrong>" for the first problem, in the spec's order.
Status check_spec_references(const RunSpec& spec, const std::set<std::string, std::less<>>& vars,
                             const std::set<std::string, std::less<>>& secrets);

// A mount after templating: "src:dst[:ro]" binds a host path, "cache:NAME:dst[:ro]" a named cache
// directory kept by the daemon. invalid_argument when it is neither, or dst is not absolute.
struct Mount {
  enum class Type { kBind, kCache };
  Type type = Type::kBind;
  std::string source;  // host path, or the cache's name
  std::string target;  // absolute path in the container
  bool read_only = false;

  friend bool operator==(const Mount&, const Mount&) = default;
};
Result<Mount> parse_mount(std::string_view text);

}  // namespace odd::proto
