#include "proto/duration.hpp"

#include <doctest/doctest.h>

namespace odd::proto {
namespace {

TEST_CASE("durations are read in h, m, s and ms, combined largest unit first") {
  CHECK(parse_duration("90s").value() == Millis(90'000));
  CHECK(parse_duration("30m").value() == Millis(1'800'000));
  CHECK(parse_duration("1h30m").value() == Millis(5'400'000));
  CHECK(parse_duration("2h").value() == Millis(7'200'000));
  CHECK(parse_duration("500ms").value() == Millis(500));
  CHECK(parse_duration("1m500ms").value() == Millis(60'500));
  CHECK(parse_duration("1h2m3s4ms").value() == Millis(3'723'004));
}

TEST_CASE("anything else is refused with the expected form and the text given") {
  for (const char* text : {"", "soon", "90", "s", "-5s", "1.5h", "30m1h", "1m1m", "0s", "90 s",
                           "1d", "31h0m1000000000s", "721h"}) {
    auto parsed = parse_duration(text);
    REQUIRE_MESSAGE(!parsed.has_value(), text);
    CHECK(parsed.error().code() == Code::kInvalidArgument);
    CHECK(parsed.error().message() ==
          std::string("expected a duration such as \"90s\" or \"30m\", got \"") + text + "\"");
  }
}

TEST_CASE("a formatted duration reads back as the same duration") {
  for (long long ms : {1LL, 999LL, 1000LL, 90'000LL, 5'400'000LL, 3'723'004LL}) {
    auto text = format_duration(Millis(ms));
    CHECK(parse_duration(text).value() == Millis(ms));
  }
  CHECK(format_duration(Millis(90'000)) == "1m30s");
}

}  // namespace
}  // namespace odd::proto
