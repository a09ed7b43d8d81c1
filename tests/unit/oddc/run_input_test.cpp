// What `oddc run` reads besides its flags: the spec, -e variables (KEY=VALUE and @file.json|yaml)
// and --secret values.
#include "oddc/run_input.hpp"

#include <doctest/doctest.h>

#include <sstream>

#include "proto/spec.hpp"
#include "tests/unit/oddc/test_io.hpp"

namespace odd::oddc {
namespace {

using testing::TempDir;

std::string error_of(const Result<proto::OutputMap>& result) {
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code() == Code::kInvalidArgument);
  return result.error().message();
}

TEST_CASE("-e KEY=VALUE sets a variable and a later one wins") {
  TempDir dir;
  auto vars = parse_vars({"filter=smoke", "empty=", "eq=a=b", "filter=full"}, dir.path());
  REQUIRE(vars.has_value());
  CHECK(*vars == proto::OutputMap{{"empty", ""}, {"eq", "a=b"}, {"filter", "full"}});
}

TEST_CASE("-e without '=' or with a bad name is refused naming the argument") {
  TempDir dir;
  CHECK(error_of(parse_vars({"filter"}, dir.path())) ==
        "-e filter: expected KEY=VALUE or @FILE.json|yaml");
  CHECK(error_of(parse_vars({"=x"}, dir.path())) ==
        "-e =x: expected a name matching [A-Za-z_][A-Za-z0-9_-]* before '='");
  CHECK(error_of(parse_vars({"9lives=x"}, dir.path())).find("-e 9lives=x: ") == 0);
}

TEST_CASE("-e @file.yaml loads a flat mapping and turns its values into strings") {
  TempDir dir;
  dir.file("vars.yaml",
           "filter: smoke\ncount: 3\nversion: 3.10\nmode: 0600\nfast: true\nnothing:\n");
  auto vars = parse_vars({"count=1", "@vars.yaml"}, dir.path());
  REQUIRE(vars.has_value());
  CHECK(*vars == proto::OutputMap{{"count", "3"},
                                  {"fast", "true"},
                                  {"filter", "smoke"},
                                  {"mode", "0600"},
                                  {"nothing", ""},
                                  {"version", "3.10"}});
}

TEST_CASE("-e @file.json loads a flat mapping; a later -e overrides it") {
  TempDir dir;
  const std::string path = dir.file("sub/vars.json", R"({"filter": "a", "n": 12, "ok": false})");
  auto vars = parse_vars({"@" + path, "filter=b"}, "/nonexistent");
  REQUIRE(vars.has_value());
  CHECK(*vars == proto::OutputMap{{"filter", "b"}, {"n", "12"}, {"ok", "false"}});
}

TEST_CASE("an empty vars file sets nothing") {
  TempDir dir;
  dir.file("empty.yml", "# nothing yet\n");
  auto vars = parse_vars({"@empty.yml"}, dir.path());
  REQUIRE(vars.has_value());
  CHECK(vars->empty());
}

TEST_CASE("a nested value in a vars file is an error naming the file and the key") {
  TempDir dir;
  dir.file("nested.yaml", "filter: a\ndb:\n  host: x\n");
  dir.file("list.json", R"({"hosts": ["a", "b"]})");
  CHECK(error_of(parse_vars({"@nested.yaml"}, dir.path())) ==
        "nested.yaml: key \"db\": expected a string, number or boolean, got a mapping");
  CHECK(error_of(parse_vars({"@list.json"}, dir.path())) ==
        "list.json: key \"hosts\": expected a string, number or boolean, got a list");
}

TEST_CASE("a bad vars file is refused naming it") {
  TempDir dir;
  dir.file("list.yaml", "- a\n- b\n");
  dir.file("broken.json", "{\"a\": ");
  dir.file("broken.yaml", "a: [1, 2\n");
  dir.file("vars.txt", "a=1\n");
  dir.file("badkey.yaml", "\"no spaces\": 1\n");
  CHECK(error_of(parse_vars({"@list.yaml"}, dir.path())) ==
        "list.yaml: expected a mapping of names to values, got a list");
  CHECK(error_of(parse_vars({"@broken.json"}, dir.path())).find("broken.json: invalid JSON") == 0);
  CHECK(error_of(parse_vars({"@broken.yaml"}, dir.path())).find("broken.yaml: invalid YAML") == 0);
  CHECK(error_of(parse_vars({"@vars.txt"}, dir.path())) ==
        "-e @vars.txt: expected a .json, .yaml or .yml file");
  CHECK(error_of(parse_vars({"@missing.yaml"}, dir.path())) ==
        "cannot read missing.yaml: No such file or directory");
  CHECK(error_of(parse_vars({"@badkey.yaml"}, dir.path())) ==
        "badkey.yaml: key \"no spaces\": expected a name matching [A-Za-z_][A-Za-z0-9_-]*");
  dir.file("big.yaml", "a: \"" + std::string(proto::kMaxSpecBytes, 'x') + "\"\n");
  CHECK(error_of(parse_vars({"@big.yaml"}, dir.path())) ==
        "big.yaml is larger than 1048576 bytes (1 MiB)");
}

TEST_CASE("--secret takes each value from the environment and refuses an unset one") {
  const EnvLookup env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "TESTER_ENV") return std::string("A=1\nB=2\n");
    if (name == "EMPTY") return std::string();
    return std::nullopt;
  };
  auto secrets = collect_secrets({"TESTER_ENV", "EMPTY"}, env);
  REQUIRE(secrets.has_value());
  CHECK(*secrets == proto::OutputMap{{"EMPTY", ""}, {"TESTER_ENV", "A=1\nB=2\n"}});
  auto missing = collect_secrets({"TESTER_ENV", "TOKEN"}, env);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error() ==
        invalid_argument("--secret TOKEN: environment variable TOKEN is not set"));
}

TEST_CASE("the spec is read from a file relative to the working directory, or from stdin") {
  TempDir dir;
  dir.file("spec.yml", "version: 1\n");
  std::istringstream none;
  auto from_file = read_spec("spec.yml", none, dir.path());
  REQUIRE(from_file.has_value());
  CHECK(*from_file == "version: 1\n");
  std::istringstream in("name: x\n");
  auto from_stdin = read_spec("-", in, dir.path());
  REQUIRE(from_stdin.has_value());
  CHECK(*from_stdin == "name: x\n");
  auto missing = read_spec("nope.yml", none, dir.path());
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error() == invalid_argument("cannot read nope.yml: No such file or directory"));
  auto directory = read_spec(dir.path(), none, "/");
  REQUIRE_FALSE(directory.has_value());
  CHECK(directory.error().message() == "cannot read " + dir.path() + ": Is a directory");
  std::istringstream big(std::string(proto::kMaxSpecBytes + 1, 'x'));
  auto too_big = read_spec("-", big, dir.path());
  REQUIRE_FALSE(too_big.has_value());
  CHECK(too_big.error().message() == "the spec on stdin is larger than 1048576 bytes (1 MiB)");
}

}  // namespace
}  // namespace odd::oddc
