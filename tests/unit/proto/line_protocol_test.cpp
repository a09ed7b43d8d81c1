#include "proto/line_protocol.hpp"

#include <doctest/doctest.h>

namespace odd::proto {
namespace {

using Output = std::pair<std::string, std::string>;

TEST_CASE("a set-output line gives its key and the rest of the line as value") {
  CHECK(parse_set_output("::set-output name=image::odd-arch:4c1d") ==
        Output{"image", "odd-arch:4c1d"});
  CHECK(parse_set_output("::set-output name=a_b-c::") == Output{"a_b-c", ""});
  CHECK(parse_set_output("::set-output name=url::http://x::y") == Output{"url", "http://x::y"});
  CHECK(parse_set_output("::set-output name=k::v w \r") == Output{"k", "v w "});
}

TEST_CASE("a set-output line with a bad key or shape is not one") {
  for (std::string_view line :
       {"", "::set-output name=::v", "::set-output name=1a::v", "::set-output name=a b::v",
        "::set-output name=a.b::v", "::set-output name=a", " ::set-output name=a::v",
        "::set-output  name=a::v", "::SET-OUTPUT name=a::v", "echo ::set-output name=a::v"}) {
    CHECK_MESSAGE(!parse_set_output(line).has_value(), line);
  }
}

TEST_CASE("PB> lines are progress with an optional label") {
  auto info = classify_line("PB> 3/10 building rootfs");
  CHECK(info.kind == LineKind::kProgress);
  REQUIRE(info.progress.has_value());
  CHECK(*info.progress == Progress{3, 10, "building rootfs"});
  CHECK(*classify_line("PB> 0/0").progress == Progress{0, 0, ""});
  CHECK(*classify_line("PB> 10/10   done  ").progress == Progress{10, 10, "done  "});
  for (std::string_view line :
       {"PB>3/10 x", "PB> 11/10 x", "PB> a/10", "PB> 3/ x", "PB> /3", "PB> 3-10 x", "PB> -1/3",
        "PB> 3/10x", "pb> 3/10", "PB> 99999999999999999999/1"}) {
    CHECK_MESSAGE(classify_line(line).kind == LineKind::kText, line);
  }
}

TEST_CASE("PASS, FAIL and SKIP lines are suite results, [xfail] marking an expected failure") {
  auto pass = classify_line("PASS 20-enable-default");
  CHECK(pass.kind == LineKind::kSuite);
  CHECK(*pass.suite == SuiteResult{"20-enable-default", SuiteStatus::kPass, std::nullopt});
  CHECK(*classify_line("FAIL 30-disable-default [xfail]").suite ==
        SuiteResult{"30-disable-default", SuiteStatus::kFail, "xfail"});
  CHECK(*classify_line("SKIP net tests\r").suite ==
        SuiteResult{"net tests", SuiteStatus::kSkip, std::nullopt});
  for (std::string_view line :
       {"PASS", "PASS ", "PASSED x", "pass x", " PASS x", "FAIL [xfail]", "OK x"}) {
    CHECK_MESSAGE(classify_line(line).kind == LineKind::kText, line);
  }
}

TEST_CASE("a [v0]..[v3] prefix gives the verbosity class and the rest is still read") {
  auto info = classify_line("[v2] compiling");
  CHECK(info.verbosity == 2);
  CHECK(info.kind == LineKind::kText);
  CHECK(classify_line("[v0]x").verbosity == 0);
  CHECK(classify_line("[v3]").verbosity == 3);
  auto suite = classify_line("[v1] PASS foo");
  CHECK(suite.verbosity == 1);
  CHECK(suite.kind == LineKind::kSuite);
  CHECK(suite.suite->name == "foo");
  CHECK(classify_line("[v0] PB> 1/2 x").kind == LineKind::kProgress);
  CHECK(classify_line("[v1] ::set-output name=k::v").output == Output{"k", "v"});
  for (std::string_view line : {"[v4] x", "[V1] x", "[v] x", " [v1] x", "[v12] x", "v1] x"}) {
    CHECK_MESSAGE(!classify_line(line).verbosity.has_value(), line);
  }
}

TEST_CASE("a set-output line is classified as one; any other line is plain text") {
  auto info = classify_line("::set-output name=image::odd:1");
  CHECK(info.kind == LineKind::kSetOutput);
  CHECK(info.output == Output{"image", "odd:1"});
  auto plain = classify_line("hello PASS x");
  CHECK(plain.kind == LineKind::kText);
  CHECK(!plain.verbosity);
  CHECK(!plain.progress);
  CHECK(!plain.suite);
  CHECK(!plain.output);
}

}  // namespace
}  // namespace odd::proto
