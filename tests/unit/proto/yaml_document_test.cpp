#include "proto/yaml_document.hpp"

#include <doctest/doctest.h>

#include <string>

namespace odd::proto {
namespace {

std::string error_of(std::string_view text) {
  auto loaded = load_yaml_document(text);
  REQUIRE_FALSE(loaded.has_value());
  CHECK(loaded.error().code() == Code::kInvalidArgument);
  return loaded.error().message();
}

TEST_CASE("one document loads, and an empty text is a null node") {
  auto loaded = load_yaml_document("name: r\njobs: [a, b]\n");
  REQUIRE(loaded.has_value());
  CHECK((*loaded)["name"].as<std::string>() == "r");
  CHECK((*loaded)["jobs"].size() == 2);

  for (std::string_view empty : {"", "# only a comment\n", "---\n"}) {
    auto none = load_yaml_document(empty);
    REQUIRE(none.has_value());
    CHECK((!none->IsDefined() || none->IsNull()));
  }
}

TEST_CASE("a second document is refused where it starts") {
  CHECK(error_of("a: 1\n---\nb: 2\n") ==
        "invalid YAML at line 2, column 1: expected a single document (a second one, or a stray "
        "',', starts here)");
}

TEST_CASE("a stray comma is an error, not an endless run of empty documents") {
  CHECK(error_of(",").starts_with("invalid YAML at line 1, column "));
  CHECK(error_of("- a\n,\n").starts_with("invalid YAML at line 2, column 1"));
}

TEST_CASE("a syntax error names its line and column and yaml-cpp's reason") {
  const std::string message = error_of("jobs: {a: [}\n");
  CHECK(message.starts_with("invalid YAML at line 1, column "));
  CHECK(message.find(": ", message.find("column")) != std::string::npos);
}

TEST_CASE("an error while reading nodes is described with its position") {
  auto loaded = load_yaml_document("a: 1\nport: many\n");
  REQUIRE(loaded.has_value());
  try {
    (void)(*loaded)["port"].as<int>();
    FAIL("as<int> on \"many\" did not throw");
  } catch (const YAML::Exception& e) {
    CHECK(describe_yaml_error(e).starts_with("invalid YAML at line 2, column 7: "));
  }
}

}  // namespace
}  // namespace odd::proto
