#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/demux.hpp"

namespace odd::engine {
namespace {

using Pieces = std::vector<std::pair<std::string, bool>>;

// A deliberately naive splitter over the whole input at once: the expectation. Each line is cut
// into max_line chunks; only the last chunk of a '\n'-terminated line is complete.
Pieces reference_split(std::string_view input, std::size_t max_line) {
  Pieces out;
  std::string line;
  auto flush = [&](bool terminated) {
    if (line.empty() && terminated) out.emplace_back("", true);
    for (std::size_t i = 0; i < line.size(); i += max_line) {
      const bool last = i + max_line >= line.size();
      out.emplace_back(line.substr(i, max_line), last && terminated);
    }
    line.clear();
  };
  for (char c : input) {
    if (c == '\n') {
      flush(true);
    } else {
      line.push_back(c);
    }
  }
  flush(false);
  return out;
}

Pieces split_in_pushes(std::string_view input, const std::vector<std::size_t>& cuts,
                       std::size_t max_line = LineSplitter::kDefaultMaxLine) {
  LineSplitter splitter(max_line);
  Pieces out;
  auto sink = [&](std::string_view piece, bool complete) {
    out.emplace_back(std::string(piece), complete);
  };
  std::size_t begin = 0;
  for (std::size_t cut : cuts) {
    splitter.push(input.substr(begin, cut - begin), sink);
    begin = cut;
  }
  splitter.push(input.substr(begin), sink);
  splitter.finish(sink);
  return out;
}

constexpr std::string_view kText =
    "first line\n\nsecond\r\n\r\n  indented\tand tabs\nlast, unterminated";

}  // namespace

TEST_CASE("lines split across two pushes at every position come out whole") {
  const Pieces expected = reference_split(kText, LineSplitter::kDefaultMaxLine);
  REQUIRE(expected.size() == 6);
  for (std::size_t cut = 0; cut <= kText.size(); ++cut) {
    CAPTURE(cut);
    CHECK(split_in_pushes(kText, {cut}) == expected);
  }
}

TEST_CASE("lines split across three pushes at every pair of positions come out whole") {
  const Pieces expected = reference_split(kText, LineSplitter::kDefaultMaxLine);
  std::size_t mismatches = 0;
  for (std::size_t a = 0; a <= kText.size(); ++a) {
    for (std::size_t b = a; b <= kText.size(); ++b) {
      if (split_in_pushes(kText, {a, b}) != expected) ++mismatches;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("lines pushed one byte at a time come out whole") {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < kText.size(); ++i) cuts.push_back(i);
  CHECK(split_in_pushes(kText, cuts) == reference_split(kText, LineSplitter::kDefaultMaxLine));
}

TEST_CASE("a CRLF line keeps its carriage return and loses only the newline") {
  const Pieces got = split_in_pushes("dos\r\nunix\n\r\n", {});
  const Pieces expected = {{"dos\r", true}, {"unix", true}, {"\r", true}};
  CHECK(got == expected);
}

TEST_CASE("empty lines are emitted as empty complete lines") {
  const Pieces got = split_in_pushes("\n\na\n\n", {});
  const Pieces expected = {{"", true}, {"", true}, {"a", true}, {"", true}};
  CHECK(got == expected);
}

TEST_CASE("no trailing empty line follows a final newline") {
  LineSplitter splitter;
  Pieces out;
  auto sink = [&](std::string_view p, bool complete) {
    out.emplace_back(std::string(p), complete);
  };
  splitter.push("one\ntwo\n", sink);
  splitter.finish(sink);
  const Pieces expected = {{"one", true}, {"two", true}};
  CHECK(out == expected);
}

TEST_CASE("finish emits a pending unterminated line as incomplete, and nothing otherwise") {
  LineSplitter splitter;
  Pieces out;
  auto sink = [&](std::string_view p, bool complete) {
    out.emplace_back(std::string(p), complete);
  };

  splitter.finish(sink);
  CHECK(out.empty());

  splitter.push("done\npart", sink);
  CHECK(splitter.pending_bytes() == 4);
  splitter.push("ial", sink);
  splitter.finish(sink);
  const Pieces expected = {{"done", true}, {"partial", false}};
  CHECK(out == expected);
  CHECK(splitter.pending_bytes() == 0);

  splitter.finish(sink);
  CHECK(out.size() == 2);
}

TEST_CASE("a 100 KiB line that dockerd sent as 16 KiB frames is joined into one line") {
  std::string line(100 * 1024, '\0');
  for (std::size_t i = 0; i < line.size(); ++i) line[i] = static_cast<char>('A' + i % 23);
  const std::string input = line + "\nnext\n";
  std::vector<std::size_t> cuts;
  for (std::size_t at = 16 * 1024; at < line.size(); at += 16 * 1024) cuts.push_back(at);
  const Pieces got = split_in_pushes(input, cuts);
  REQUIRE(got.size() == 2);
  CHECK(got[0].second);
  CHECK(got[0].first == line);
  CHECK(got[1] == std::make_pair(std::string("next"), true));
}

TEST_CASE("a line longer than max_line is cut into max_line pieces, only the last complete") {
  const Pieces got = split_in_pushes("abcdefghij\nabcd\nabcde\nabcdefgh", {}, 4);
  const Pieces expected = {{"abcd", false}, {"efgh", false}, {"ij", true},    {"abcd", true},
                           {"abcd", false}, {"e", true},     {"abcd", false}, {"efgh", false}};
  CHECK(got == expected);
}

TEST_CASE("forced cuts do not depend on where the pushes were split") {
  const std::string input = "abcdefghij\nabcd\n\nabcde\r\nxy\nabcdefgh\nabcdefghi";
  for (std::size_t max_line = 1; max_line <= 6; ++max_line) {
    CAPTURE(max_line);
    const Pieces expected = reference_split(input, max_line);
    std::size_t mismatches = 0;
    for (std::size_t a = 0; a <= input.size(); ++a) {
      for (std::size_t b = a; b <= input.size(); ++b) {
        if (split_in_pushes(input, {a, b}, max_line) != expected) ++mismatches;
      }
    }
    CHECK(mismatches == 0);
  }
}

TEST_CASE("a pending line never holds more than max_line bytes") {
  LineSplitter splitter(8);
  std::size_t emitted = 0;
  for (int i = 0; i < 100; ++i) {
    splitter.push("xyz", [&](std::string_view p, bool complete) {
      CHECK(p.size() == 8);
      CHECK_FALSE(complete);
      emitted += p.size();
    });
    CHECK(splitter.pending_bytes() <= 8);
  }
  CHECK(emitted + splitter.pending_bytes() == 300);
}

TEST_CASE("lines wholly inside a push are passed on without copying") {
  const std::string input = "alpha\nbeta\ngam";
  LineSplitter splitter;
  std::vector<const char*> starts;
  splitter.push(input, [&](std::string_view p, bool) { starts.push_back(p.data()); });
  REQUIRE(starts.size() == 2);
  CHECK(starts[0] == input.data());
  CHECK(starts[1] == input.data() + 6);
}

TEST_CASE("a max_line of zero is taken as one") {
  LineSplitter splitter(0);
  CHECK(splitter.max_line() == 1);
  const Pieces got = split_in_pushes("ab\n", {}, 0);
  const Pieces expected = {{"a", false}, {"b", true}};
  CHECK(got == expected);
}

}  // namespace odd::engine
