// Vectors checked against moby/patternmatcher (MatchesOrParentMatches over ignorefile.ReadAll's
// patterns) run by Go; a later integration test compares whole contexts with `docker build`.

#include "engine/dockerignore.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace odd::engine {
namespace {

IgnoreMatcher parsed(std::string_view text) {
  auto m = IgnoreMatcher::parse(text);
  REQUIRE_MESSAGE(m.has_value(), m.error().message());
  return *m;
}

TEST_SUITE("engine/dockerignore") {
  TEST_CASE("each pattern vector gives dockerd's answer") {
    struct Vector {
      std::string_view dockerignore;  // lines joined by \n
      std::string_view path;
      bool excluded;
      std::string_view why;
    };
    static constexpr Vector kVectors[] = {
        {"*.go", "main.go", true, "a star matches within one path element"},
        {"*.go", "cmd/main.go", false, "a star never crosses a slash"},
        {"**/*.go", "cmd/main.go", true, "leading ** matches any directories"},
        {"**/*.go", "main.go", true, "leading ** matches no directory too"},
        {"**", "a/b/c", true, "** alone matches everything"},
        {"**/node_modules", "src/node_modules/pkg/index.js", true,
         "leading **: a directory anywhere, with its content"},
        {"**/node_modules", "node_modules", true, "leading **/ matches at the root"},
        {"a/**/b", "a/b", true, "middle ** matches zero directories"},
        {"a/**/b", "a/x/y/b", true, "middle ** matches several directories"},
        {"a/**/b", "a/x/c", false, "middle ** still needs what follows"},
        {"a/**", "a", false, "trailing ** needs something below"},
        {"a/**", "a/x/y", true, "trailing ** matches everything below"},
        {"a**/*.txt", "a/dir/file.txt", true, "** glued to a name"},
        {"**.txt", "dir/notes.txt", true, "leading ** then a name is a plain suffix test"},
        {"docs", "docs/README.md", true, "a directory pattern excludes its content"},
        {"docs\n!docs/README.md", "docs/README.md", false,
         "an exception re-includes a file inside an excluded directory"},
        {"docs\n!docs/README.md", "docs/guide.md", true,
         "an exception re-includes only what it matches"},
        {"docs/\n!docs/README.md", "docs/README.md", false, "a trailing slash is cleaned away"},
        {"docs/*\n!docs/README.md", "docs/README.md", false, "exception after a wildcard"},
        {"vendor\n!vendor/keep", "vendor/keep/a/b.go", false,
         "an exception for a directory re-includes its content"},
        {"vendor\n!vendor/keep", "vendor/drop/b.go", true,
         "siblings of a re-included directory stay excluded"},
        {"dir\n!**/keep", "dir/sub/keep", false,
         "a ** exception reaches inside an excluded directory"},
        {"**\n!util/docker/web", "util/docker/web/foo", false,
         "exception under a global exclusion (moby's own vector)"},
        {"**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", true,
         "the last match wins"},
        {"*.go\n!main.go", "main.go", false, "a later exception wins"},
        {"!main.go\n*.go", "main.go", true, "a later exclusion wins over an earlier exception"},
        {"**/*.log\n!important/*.log", "important/x.log", false, "exception with a wildcard"},
        {"**/*.log\n!important/*.log", "other/x.log", true,
         "exception with a wildcard leaves others excluded"},
        {"dir/file\n!dir", "dir/file", false,
         "an exception matching a parent re-includes (MatchesOrParentMatches)"},
        {"/build", "build/out.o", true, "a leading slash is removed"},
        {"/build", "src/build", false, "patterns are anchored at the context root"},
        {"build", "src/build", false, "unlike .gitignore, a bare name matches only at the root"},
        {"a?c", "abc", true, "? matches one character"},
        {"a?c", "a/c", false, "? never matches a slash"},
        {"?", "\xc3\xa9", true, "? matches one UTF-8 character, not one byte"},
        {"[a-c]x", "bx", true, "a range"},
        {"[a-c]x", "dx", false, "outside the range"},
        {"[^a]x", "bx", true, "a negated class"},
        {"[^a]x", "ax", false, "a negated class rejects its members"},
        {"[[:digit:]]x", "7x", true, "POSIX classes work (Go regexp)"},
        {"a[b-d]e", "ace", true, "range inside a name"},
        {"\\*.txt", "*.txt", true, "an escaped star is literal"},
        {"\\*.txt", "a.txt", false, "an escaped star does not glob"},
        {"a\\[b", "a[b", true, "an escaped bracket is literal"},
        {".*", ".env", true, "dot files"},
        {".*", "a/.env", false, "dot files only at the root"},
        {"abc.def", "abcxdef", false, "a dot is literal"},
        {"*~", "notes~", true, "editor backups"},
        {"# comment\n*.md", "# comment", false, "a # line is a comment"},
        {"# comment\n*.md", "README.md", true, "patterns after a comment apply"},
        {" #x", " #x", false, "# after leading space is a pattern; the space is trimmed away"},
        {" #x", "#x", true, "so it matches the file #x"},
        {"\n   \n\t*.md  ", "a.md", true, "blank lines skipped, patterns trimmed"},
        {"./foo/../bar", "bar", true, "patterns are cleaned like paths"},
        {"foo//./bar/", "foo/bar", true, "repeated slashes and dots cleaned"},
        {"../x", "x", false, "a pattern above the context matches nothing"},
        {"*/", "a/b", true, "a trailing slash on a wildcard"},
        {"a|b", "a|b", true, "| is literal in a pattern without wildcards"},
        {"a|b*", "apple", true, "dockerd quirk: | reaches Go's regexp raw and alternates"},
        {"a{2}*", "aa.txt", true, "dockerd quirk: {n} reaches Go's regexp raw and repeats"},
        {"\xef\xbb\xbf*.md", "a.md", true, "a UTF-8 BOM on the first line is dropped"},
        {"*.md\r", "a.md", true, "CRLF line endings"},
        {"!build\nbuild", "build/x", true, "an exception before anything matched does nothing"},
    };
    static_assert(std::size(kVectors) >= 40);
    for (const Vector& v : kVectors) {
      CAPTURE(v.dockerignore);
      CAPTURE(v.path);
      INFO(v.why);
      const IgnoreMatcher m = parsed(v.dockerignore);
      CHECK(m.excluded(v.path) == v.excluded);
    }
  }

  TEST_CASE("a path is cleaned before matching") {
    const IgnoreMatcher m = parsed("docs\n!docs/keep.md");
    for (std::string_view p :
         {"docs/a.md", "./docs/a.md", "docs//a.md", "/docs/a.md", "x/../docs/a.md"}) {
      CAPTURE(p);
      CHECK(m.excluded(p));
    }
    CHECK_FALSE(m.excluded("./docs//keep.md"));
    CHECK_FALSE(m.excluded("."));
    CHECK_FALSE(m.excluded(""));
  }

  TEST_CASE("an empty file excludes nothing") {
    const IgnoreMatcher m = parsed("");
    CHECK(m.empty());
    CHECK_FALSE(m.excluded("anything"));
  }

  TEST_CASE("patterns are kept as dockerd keeps them") {
    const IgnoreMatcher m = parsed("# c\n /a/b/ \n! ./c\n\n**/d/**\r\n");
    CHECK(m.patterns() == std::vector<std::string>{"a/b", "!c", "**/d/**"});
  }

  TEST_CASE("an invalid pattern fails naming its line and the pattern") {
    struct Bad {
      std::string_view text;
      std::string_view message;
    };
    for (const Bad& b : {
             Bad{"*.go\n\n[abc", ".dockerignore line 3: invalid pattern \"[abc\""},
             Bad{"!", ".dockerignore line 1: invalid pattern \"!\""},
             Bad{"ok\nend\\", ".dockerignore line 2: invalid pattern \"end\\\""},
             Bad{"[z-a]", ".dockerignore line 1: invalid pattern \"[z-a]\""},
             Bad{"a\\k", ".dockerignore line 1: invalid pattern \"a\\k\""},
             Bad{"[]a]", ".dockerignore line 1: invalid pattern \"[]a]\""},
         }) {
      CAPTURE(b.text);
      auto m = IgnoreMatcher::parse(b.text);
      REQUIRE_FALSE(m.has_value());
      CHECK(m.error().code() == Code::kInvalidArgument);
      CHECK(m.error().message().rfind(b.message, 0) == 0);
    }
  }

  TEST_CASE("a line over 64 KiB is refused as dockerd's reader refuses it") {
    auto m = IgnoreMatcher::parse("a\n" + std::string(64 * 1024, 'x'));
    REQUIRE_FALSE(m.has_value());
    CHECK(m.error().message().find("line 2") != std::string::npos);
    CHECK(IgnoreMatcher::parse(std::string(64 * 1024 - 1, 'x')).has_value());
  }

  TEST_CASE("an excluded directory is skipped only when no exception can reach inside") {
    auto skippable = [](std::string_view text, std::string_view dir) {
      const IgnoreMatcher m = parsed(text);
      IgnoreMatcher::Scope scope = m.root();
      std::size_t slash = 0;
      const std::string path(dir);
      while ((slash = path.find('/', slash)) != std::string::npos) {
        scope = m.enter(scope, path.substr(0, slash));
        ++slash;
      }
      scope = m.enter(scope, path);
      return scope.excluded() && m.can_skip(scope, path);
    };
    CHECK(skippable("node_modules", "node_modules"));
    CHECK(skippable("**/node_modules", "web/node_modules"));
    CHECK_FALSE(skippable("node_modules", "src"));  // not excluded at all
    CHECK_FALSE(skippable("vendor\n!vendor/keep", "vendor"));
    CHECK(skippable("vendor\n!vendor/keep", "vendor/drop"));
    CHECK_FALSE(skippable("vendor\n!vendor/keep", "vendor/keep"));  // re-included
    CHECK_FALSE(skippable("dir\n!**/keep", "dir"));
    CHECK_FALSE(skippable("dir\n!dir/*/x.txt", "dir"));
    CHECK(skippable("dir\n!other/*/x.txt", "dir"));
    CHECK(skippable("!dir/keep\ndir", "dir"));  // the exception comes before the exclusion
    CHECK_FALSE(skippable("out\n!out/**", "out"));
    CHECK_FALSE(skippable("*\n!a|*b", "c"));  // a raw | may match anywhere: never skip
  }

  TEST_CASE("the incremental form agrees with excluded()") {
    const IgnoreMatcher m = parsed("a\n!a/b\n**/c\n!**/c/d*");
    for (std::string_view p : {"a/x", "a/b/x", "q/c/e", "q/c/dd/e", "c", "a/b/c/d1"}) {
      CAPTURE(p);
      const std::string path(p);
      IgnoreMatcher::Scope scope = m.root();
      std::size_t slash = 0;
      while ((slash = path.find('/', slash)) != std::string::npos) {
        scope = m.enter(scope, path.substr(0, slash));
        ++slash;
      }
      CHECK(m.excluded(scope, path) == m.excluded(path));
    }
  }

  TEST_CASE("clean_path follows Go's path.Clean") {
    CHECK(clean_path("") == ".");
    CHECK(clean_path("a//b/./c/") == "a/b/c");
    CHECK(clean_path("a/../../b") == "../b");
    CHECK(clean_path("/../a") == "/a");
    CHECK(clean_path("./") == ".");
    CHECK(clean_path("//") == "/");
  }
}

}  // namespace
}  // namespace odd::engine
