#include "proto/matrix.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proto/spec.hpp"

namespace odd::proto {
namespace {

RunSpec parse(std::string_view text) {
  auto parsed = parse_spec(text);
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().message());
  return *parsed;
}

std::vector<std::string> keys(const std::vector<JobInstance>& instances) {
  std::vector<std::string> out;
  for (const auto& instance : instances) out.push_back(instance.key);
  return out;
}

TEST_CASE("a job without a matrix is one instance keyed by its name") {
  const RunSpec spec =
      parse("version: 1\nname: r\njobs:\n  unit:\n    steps: [{exec: {cmd: x}}]\n");
  auto instances = expand_jobs(spec).value();
  REQUIRE(instances.size() == 1);
  CHECK(instances[0] == JobInstance{"unit", "unit", 0, {}});
}

TEST_CASE("matrix combinations vary the first key slowest and keep the original values") {
  const RunSpec spec = parse(R"(version: 1
name: r
jobs:
  lint:
    steps: [{exec: {cmd: x}}]
  test:
    matrix:
      os: ["ubuntu:22.04", Fedora]
      py: [3.10, 3.9]
    steps: [{exec: {cmd: x}}]
)");
  auto instances = expand_jobs(spec).value();
  CHECK(keys(instances) == std::vector<std::string>{"lint", "test-ubuntu-22.04-3.10",
                                                    "test-ubuntu-22.04-3.9", "test-fedora-3.10",
                                                    "test-fedora-3.9"});
  CHECK(instances[1].job == "test");
  CHECK(instances[1].job_index == 1);
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  CHECK(instances[1].matrix == Pairs{{"os", "ubuntu:22.04"}, {"py", "3.10"}});
  CHECK(instances[4].matrix == Pairs{{"os", "Fedora"}, {"py", "3.9"}});
}

TEST_CASE("key parts are lowercased and everything outside [a-z0-9_.-] becomes '-'") {
  CHECK(sanitize_key_part("ubuntu:22.04") == "ubuntu-22.04");
  CHECK(sanitize_key_part("Fedora 40") == "fedora-40");
  CHECK(sanitize_key_part("a_b.c-d") == "a_b.c-d");
  CHECK(sanitize_key_part("x/y@z") == "x-y-z");
  CHECK(sanitize_key_part("é") == "--");
}

TEST_CASE("two combinations with one key are an error naming both values") {
  RunSpec spec;
  spec.name = "r";
  JobSpec job;
  job.name = "test";
  job.matrix = {{"distro", {"Arch", "arch"}}};
  job.steps.push_back(StepSpec{std::nullopt, std::nullopt, ExecStep{"x", {}}});
  spec.jobs.push_back(job);
  auto instances = expand_jobs(spec);
  REQUIRE(!instances.has_value());
  CHECK(instances.error().code() == Code::kInvalidArgument);
  CHECK(spec_error_path(instances.error()) == "jobs.test.matrix");
  CHECK(instances.error().message().find("\"arch\"") != std::string::npos);
  CHECK(instances.error().message().find("\"Arch\"") != std::string::npos);
}

TEST_CASE("a hand-built spec over the bounds is refused") {
  RunSpec spec;
  JobSpec job;
  job.name = "big";
  job.steps.push_back(StepSpec{std::nullopt, std::nullopt, ExecStep{"x", {}}});
  std::vector<std::string> values;
  for (int i = 0; i < 20; ++i) values.push_back(std::to_string(i));
  job.matrix = {{"a", values}, {"b", values}};
  spec.jobs.push_back(job);
  CHECK(!expand_jobs(spec).has_value());

  spec.jobs.clear();
  job.matrix = {{"a", std::vector<std::string>(values.begin(), values.begin() + 16)},
                {"b", std::vector<std::string>(values.begin(), values.begin() + 16)}};
  for (int j = 0; j < 4; ++j) {
    job.name = "j" + std::to_string(j);
    spec.jobs.push_back(job);
  }
  auto instances = expand_jobs(spec);
  REQUIRE(!instances.has_value());
  CHECK(instances.error().message().find("at most 1000 job instances") != std::string::npos);
}

TEST_CASE("a parsed spec whose matrices exceed 1000 instances in all is a spec error") {
  std::string text = "version: 1\nname: r\njobs:\n";
  for (int j = 0; j < 4; ++j) {
    text += "  j" + std::to_string(j) + ":\n    matrix: {a: [";
    for (int i = 0; i < 16; ++i) text += (i ? "," : "") + std::to_string(i);
    text += "], b: [";
    for (int i = 0; i < 16; ++i) text += (i ? "," : "") + std::to_string(i);
    text += "]}\n    steps: [{exec: {cmd: x}}]\n";
  }
  auto parsed = parse_spec(text);
  REQUIRE(!parsed.has_value());
  CHECK(spec_error_path(parsed.error()) == "jobs");
}

TEST_CASE("job levels follow needs, each level in spec order") {
  const RunSpec spec = parse(R"(version: 1
name: r
jobs:
  report: {needs: [test, lint], steps: [{exec: {cmd: x}}]}
  test: {needs: [image], steps: [{exec: {cmd: x}}]}
  lint: {steps: [{exec: {cmd: x}}]}
  image: {steps: [{exec: {cmd: x}}]}
  docs: {needs: image, steps: [{exec: {cmd: x}}]}
)");
  using Levels = std::vector<std::vector<std::string>>;
  CHECK(job_levels(spec) == Levels{{"lint", "image"}, {"test", "docs"}, {"report"}});
}

TEST_CASE("jobs on a cycle in a hand-built spec are left out of the levels") {
  RunSpec spec;
  for (const char* name : {"a", "b", "c"}) {
    JobSpec job;
    job.name = name;
    spec.jobs.push_back(job);
  }
  spec.jobs[1].needs = {"c"};
  spec.jobs[2].needs = {"b"};
  using Levels = std::vector<std::vector<std::string>>;
  CHECK(job_levels(spec) == Levels{{"a"}});
}

}  // namespace
}  // namespace odd::proto
