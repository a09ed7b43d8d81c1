#pragma once
// IgnoreMatcher: a build context's `.dockerignore` with the semantics of the docker CLI, BuildKit
// and dockerd (moby/patternmatcher: lines read as `ignorefile.ReadAll` reads them, paths matched
// as `MatchesOrParentMatches` matches them). A path is excluded when the last pattern that matches
// it or one of its parent directories is not a `!` exception. Immutable after parse(); the const
// methods are safe from any thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace odd::engine {

// Go's path.Clean, the cleaning dockerd applies to patterns and paths: repeated slashes, "." and
// resolvable ".." elements and a trailing slash are removed; "" becomes ".".
std::string clean_path(std::string_view path);

class IgnoreMatcher {
 public:
  // Which patterns match a directory or one of its ancestors, so a walker evaluates each pattern
  // once per path rather than once per ancestor. Start from root(), extend with enter().
  class Scope {
   public:
    // Whether the directory this scope was entered for is excluded.
    bool excluded() const { return excluded_; }

   private:
    friend class IgnoreMatcher;
    std::vector<bool> hit_;
    bool excluded_ = false;
  };

  // Reads `.dockerignore` text: "#" comment lines and blank lines are skipped, each pattern is
  // trimmed and cleaned, a leading "/" is dropped and "!" marks an exception. Returns
  // invalid_argument naming the line and the pattern for a pattern dockerd rejects ("!" alone, an
  // unterminated "[", a bad range, a trailing "\", an escape Go's regexp refuses) and for a line
  // over 64 KiB.
  static Result<IgnoreMatcher> parse(std::string_view text);

  // Whether dockerd leaves `relative_path` (relative to the context root, "/"-separated) out of
  // the context. The path is cleaned first, so "./a//b" and "a/b" agree; the root is never
  // excluded.
  bool excluded(std::string_view relative_path) const;

  // Incremental form of excluded() for a walker that visits parents before children; `path` and
  // `dir` are clean relative paths directly inside the directory of `parent`.
  Scope root() const;
  Scope enter(const Scope& parent, std::string_view dir) const;
  bool excluded(const Scope& parent, std::string_view path) const;

  // Whether nothing below the excluded directory `dir` (its scope from enter()) can be
  // re-included by a later "!" pattern, so a walker need not descend into it. False whenever it
  // cannot tell: skipping is only an optimisation.
  bool can_skip(const Scope& dir_scope, std::string_view dir) const;

  // The patterns as dockerd keeps them, exceptions with their "!", in file order.
  std::vector<std::string> patterns() const;
  bool empty() const { return patterns_.empty(); }

 private:
  // A Go regular expression from moby's pattern translation, compiled to a Thompson NFA.
  struct Program;

  struct Pattern {
    enum class Kind : std::uint8_t { kExact, kPrefix, kSuffix, kRegex };
    std::string text;  // cleaned, without the "!"
    bool exception = false;
    Kind kind = Kind::kExact;
    std::shared_ptr<const Program> program;  // kRegex only
  };

  static bool matches(const Pattern& pattern, std::string_view path);
  static bool may_match_below(const Pattern& pattern, std::string_view dir);

  std::vector<Pattern> patterns_;
};

}  // namespace odd::engine
