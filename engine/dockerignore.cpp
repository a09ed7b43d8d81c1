#include "engine/dockerignore.hpp"

#include <algorithm>
#include <optional>
#include <utility>

namespace odd::engine {
namespace {

// Every rule below mirrors a Go library function that dockerd's matcher goes through: Go's
// bufio.Scanner, strings.TrimSpace, path.Clean, filepath.Match (used only to validate),
// text/scanner, and the regexp/syntax parser with its Perl flags. Where they disagree with a
// plain glob, dockerd's behaviour wins, however odd.

constexpr char32_t kRuneError = 0xFFFD;
constexpr char32_t kMaxRune = 0x10FFFF;
constexpr std::size_t kMaxLine = 64 * 1024;  // bufio.MaxScanTokenSize
constexpr std::size_t kMaxProgram = 100000;  // NFA instructions per pattern

struct Decoded {
  char32_t rune;
  std::size_t width;
};

// utf8.DecodeRuneInString: an invalid or truncated sequence is U+FFFD of width 1.
Decoded decode_rune(std::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return {b0, 1};
  std::size_t need = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  char32_t rune = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    rune = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    rune = b0 & 0x0Fu;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    rune = b0 & 0x07u;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {kRuneError, 1};
  }
  if (s.size() < need + 1) return {kRuneError, 1};
  for (std::size_t i = 1; i <= need; ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return {kRuneError, 1};
    rune = (rune << 6) | (b & 0x3Fu);
  }
  return {rune, need + 1};
}

void append_utf8(std::string& out, char32_t r) {
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

bool is_go_space(char32_t r) {
  switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return r >= 0x2000 && r <= 0x200A;
  }
}

// strings.TrimSpace (Unicode White_Space on both ends).
std::string_view trim_space(std::string_view s) {
  while (!s.empty()) {
    const Decoded d = decode_rune(s);
    if (d.rune == kRuneError || !is_go_space(d.rune)) break;
    s.remove_prefix(d.width);
  }
  while (!s.empty()) {
    // The last rune is a space only when the string ends with its complete encoding.
    std::size_t width = 0;
    for (std::size_t w = 1; w <= 3 && w <= s.size(); ++w) {
      const Decoded d = decode_rune(s.substr(s.size() - w));
      if (d.width == w && d.rune != kRuneError && is_go_space(d.rune)) width = w;
    }
    if (width == 0) break;
    s.remove_suffix(width);
  }
  return s;
}

bool is_alnum(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_word(std::int32_t c) { return c >= 0 && (is_alnum(static_cast<char32_t>(c)) || c == '_'); }

int unhex(char32_t c) {
  if (c >= '0' && c <= '9') return static_cast<int>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<int>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<int>(c - 'A' + 10);
  return -1;
}

// --- filepath.Match, used by moby only to reject malformed patterns ---------------------------

// Go's getEsc: one class character, possibly escaped. Advances `chunk`.
std::optional<std::string> class_char(std::string_view& chunk) {
  if (chunk.empty() || chunk[0] == '-' || chunk[0] == ']') {
    return chunk.empty() ? "unterminated character class"
                         : std::string("unexpected '") + chunk[0] + "' in character class";
  }
  if (chunk[0] == '\\') {
    chunk.remove_prefix(1);
    if (chunk.empty()) return "unterminated character class";
  }
  const Decoded d = decode_rune(chunk);
  if (d.rune == kRuneError && d.width == 1) return "invalid UTF-8 in character class";
  chunk.remove_prefix(d.width);
  if (chunk.empty()) return "unterminated character class";
  return std::nullopt;
}

// The syntax check of filepath.Match(pattern, "."): every chunk between stars is parsed whatever
// the name, so the answer depends on the pattern only.
std::optional<std::string> glob_syntax_error(std::string_view pattern) {
  while (!pattern.empty()) {
    while (!pattern.empty() && pattern[0] == '*') pattern.remove_prefix(1);
    bool in_range = false;
    std::size_t i = 0;
    for (; i < pattern.size(); ++i) {
      const char c = pattern[i];
      if (c == '\\') {
        if (i + 1 < pattern.size()) ++i;
      } else if (c == '[') {
        in_range = true;
      } else if (c == ']') {
        in_range = false;
      } else if (c == '*' && !in_range) {
        break;
      }
    }
    std::string_view chunk = pattern.substr(0, i);
    pattern.remove_prefix(i);
    while (!chunk.empty()) {
      if (chunk[0] == '[') {
        chunk.remove_prefix(1);
        if (!chunk.empty() && chunk[0] == '^') chunk.remove_prefix(1);
        for (int nrange = 0;; ++nrange) {
          if (!chunk.empty() && chunk[0] == ']' && nrange > 0) {
            chunk.remove_prefix(1);
            break;
          }
          if (auto error = class_char(chunk)) return error;
          if (chunk[0] == '-') {
            chunk.remove_prefix(1);
            if (auto error = class_char(chunk)) return error;
          }
        }
      } else if (chunk[0] == '\\') {
        chunk.remove_prefix(1);
        if (chunk.empty()) return "trailing backslash";
        chunk.remove_prefix(1);
      } else {
        chunk.remove_prefix(1);
      }
    }
  }
  return std::nullopt;
}

// --- moby's pattern → regular expression translation (Pattern.compile) ------------------------

struct Translation {
  bool regex = false;
  bool prefix = false;
  bool suffix = false;
  std::string expr;
};

Translation translate(std::string_view pattern) {
  Translation out;
  enum { kExact, kPrefix, kSuffix, kRegex } type = kExact;
  std::string re = "^";
  std::size_t pos = 0;
  // text/scanner skips a byte-order mark at the very start.
  if (pattern.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;
  auto peek = [&](char c) { return pos < pattern.size() && pattern[pos] == c; };
  for (int i = 0; pos < pattern.size(); ++i) {
    const Decoded d = decode_rune(pattern.substr(pos));
    pos += d.width;
    const char32_t ch = d.rune;
    if (ch == '*') {
      if (peek('*')) {
        ++pos;
        if (peek('/')) ++pos;
        if (pos == pattern.size()) {
          if (type == kExact) {
            type = kPrefix;
          } else {
            re += ".*";
            type = kRegex;
          }
        } else {
          re += "(.*/)?";
          type = kRegex;
        }
        if (i == 0) type = kSuffix;
      } else {
        re += "[^/]*";
        type = kRegex;
      }
    } else if (ch == '?') {
      re += "[^/]";
      type = kRegex;
    } else if (ch == '.' || ch == '+' || ch == '(' || ch == ')' || ch == '$') {
      // moby means to escape `|{}` too, but its bitmap drops every byte >= 64, so they reach
      // the regular expression raw: "a|b" alternates, "a{2}" repeats.
      re += '\\';
      re += static_cast<char>(ch);
    } else if (ch == '\\') {
      if (pos < pattern.size()) {
        const Decoded next = decode_rune(pattern.substr(pos));
        pos += next.width;
        re += '\\';
        append_utf8(re, next.rune);
        type = kRegex;
      } else {
        re += '\\';
      }
    } else if (ch == '[' || ch == ']') {
      re += static_cast<char>(ch);
      type = kRegex;
    } else {
      append_utf8(re, ch);
    }
  }
  out.regex = type == kRegex;
  out.prefix = type == kPrefix;
  out.suffix = type == kSuffix;
  if (out.regex) out.expr = re + "$";
  return out;
}

// --- Go regexp/syntax, for the expressions the translation produces ---------------------------

using Ranges = std::vector<std::pair<char32_t, char32_t>>;

enum Assertion : std::uint32_t { kBeginText, kEndText, kWordBoundary, kNoWordBoundary };

struct Node {
  enum class Kind { kRunes, kAssert, kConcat, kAlternate, kRepeat };
  Kind kind = Kind::kConcat;
  Ranges ranges;
  Assertion assertion = kBeginText;
  int min = 0;  // kRepeat: max -1 is unbounded
  int max = -1;
  std::vector<Node> subs;
};

Ranges normalized(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& range : r) {
    if (!out.empty() && range.first <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, range.second);
    } else {
      out.push_back(range);
    }
  }
  return out;
}

Ranges negated(const Ranges& r) {
  Ranges sorted = normalized(r);
  Ranges out;
  char32_t next = 0;
  for (const auto& [lo, hi] : sorted) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxRune) out.emplace_back(next, kMaxRune);
  return out;
}

const Ranges* posix_class(std::string_view name, bool& negate) {
  static const std::pair<std::string_view, Ranges> kClasses[] = {
      {"alnum", {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}}},
      {"alpha", {{'A', 'Z'}, {'a', 'z'}}},
      {"ascii", {{0, 0x7F}}},
      {"blank", {{'\t', '\t'}, {' ', ' '}}},
      {"cntrl", {{0, 0x1F}, {0x7F, 0x7F}}},
      {"digit", {{'0', '9'}}},
      {"graph", {{'!', '~'}}},
      {"lower", {{'a', 'z'}}},
      {"print", {{' ', '~'}}},
      {"punct", {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}}},
      {"space", {{'\t', '\r'}, {' ', ' '}}},
      {"upper", {{'A', 'Z'}}},
      {"word", {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}},
      {"xdigit", {{'0', '9'}, {'A', 'F'}, {'a', 'f'}}},
  };
  negate = !name.empty() && name[0] == '^';
  if (negate) name.remove_prefix(1);
  for (const auto& [n, ranges] : kClasses) {
    if (n == name) return &ranges;
  }
  return nullptr;
}

// \d \s \w and their negations.
std::optional<Ranges> perl_class(std::string_view t) {
  if (t.size() < 2 || t[0] != '\\') return std::nullopt;
  Ranges r;
  switch (t[1]) {
    case 'd':
    case 'D':
      r = {{'0', '9'}};
      break;
    case 's':
    case 'S':
      r = {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}};
      break;
    case 'w':
    case 'W':
      r = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
      break;
    default:
      return std::nullopt;
  }
  return (t[1] >= 'A' && t[1] <= 'Z') ? negated(r) : r;
}

// Instructions the NFA for `node` needs, saturating: "x{1000}" is a thousand copies of x.
std::size_t program_size(const Node& node) {
  constexpr std::size_t kHuge = std::size_t{1} << 40;
  std::size_t total = 0;
  switch (node.kind) {
    case Node::Kind::kRunes:
    case Node::Kind::kAssert:
      return 1;
    case Node::Kind::kConcat:
    case Node::Kind::kAlternate:
      for (const Node& sub : node.subs) total = std::min(kHuge, total + program_size(sub) + 2);
      return total;
    case Node::Kind::kRepeat: {
      const std::size_t copies = static_cast<std::size_t>(std::max(node.min, node.max) + 1);
      return std::min(kHuge, copies * (program_size(node.subs[0]) + 2));
    }
  }
  return kHuge;
}

class RegexParser {
 public:
  explicit RegexParser(std::string_view expr) : t_(expr) {}

  Result<Node> parse() { return parse_alternate(0); }

 private:
  Status error(std::string_view what) const {
    return invalid_argument("not a valid Go regular expression (" + std::string(what) + ")");
  }

  Result<Node> parse_alternate(int depth) {
    Node alternate;
    alternate.kind = Node::Kind::kAlternate;
    while (true) {
      auto concat = parse_concat(depth);
      if (!concat) return concat;
      alternate.subs.push_back(std::move(*concat));
      if (t_.empty() || t_[0] != '|') break;
      t_.remove_prefix(1);
    }
    if (alternate.subs.size() == 1) return std::move(alternate.subs[0]);
    return alternate;
  }

  // Go's parseRepeat: {n}, {n,} or {n,m}; anything else leaves "{" a literal.
  bool parse_repeat(int& min, int& max) {
    std::string_view t = t_.substr(1);
    auto number = [&t](int& n) {
      if (t.empty() || t[0] < '0' || t[0] > '9') return false;
      if (t.size() >= 2 && t[0] == '0' && t[1] >= '0' && t[1] <= '9') return false;
      n = 0;
      for (; !t.empty() && t[0] >= '0' && t[0] <= '9'; t.remove_prefix(1)) {
        if (n >= 100000000) n = -1;
        if (n >= 0) n = n * 10 + (t[0] - '0');
      }
      return true;
    };
    if (!number(min) || t.empty()) return false;
    if (t[0] != ',') {
      max = min;
    } else {
      t.remove_prefix(1);
      if (t.empty()) return false;
      if (t[0] == '}') {
        max = -1;
      } else if (!number(max)) {
        return false;
      } else if (max < 0) {
        min = -1;
      }
    }
    if (t.empty() || t[0] != '}') return false;
    t_ = t.substr(1);
    return true;
  }

  Result<Node> parse_concat(int depth) {
    Node concat;
    bool last_repeat = false;
    while (!t_.empty() && t_[0] != '|') {
      const char c = t_[0];
      bool repeat = false;
      if (c == ')') {
        if (depth == 0) return error("unexpected )");
        break;
      }
      int min = 0;
      int max = -1;
      switch (c) {
        case '(': {
          if (t_.size() >= 2 && t_[1] == '?') return error("unsupported group flags");
          t_.remove_prefix(1);
          auto sub = parse_alternate(depth + 1);
          if (!sub) return sub;
          if (t_.empty() || t_[0] != ')') return error("missing )");
          t_.remove_prefix(1);
          concat.subs.push_back(std::move(*sub));
          break;
        }
        case '^':
          t_.remove_prefix(1);
          concat.subs.push_back(assertion(kBeginText));
          break;
        case '$':
          t_.remove_prefix(1);
          concat.subs.push_back(assertion(kEndText));
          break;
        case '.':
          t_.remove_prefix(1);
          concat.subs.push_back(runes({{0, '\n' - 1}, {'\n' + 1, kMaxRune}}));
          break;
        case '[': {
          auto cls = parse_class();
          if (!cls) return cls.error();
          concat.subs.push_back(runes(std::move(*cls)));
          break;
        }
        case '{':
          if (!parse_repeat(min, max)) {
            t_.remove_prefix(1);
            concat.subs.push_back(runes({{'{', '{'}}));
            break;
          }
          if (min < 0 || min > 1000 || max > 1000 || (max >= 0 && min > max)) {
            return error("invalid repeat count");
          }
          [[fallthrough]];
        case '*':
        case '+':
        case '?': {
          if (c != '{') {
            t_.remove_prefix(1);
            min = c == '+' ? 1 : 0;
            max = c == '?' ? 1 : -1;
          }
          if (!t_.empty() && t_[0] == '?') t_.remove_prefix(1);  // non-greedy: same language
          if (last_repeat) return error("invalid nested repetition operator");
          if (concat.subs.empty()) return error("missing argument to repetition operator");
          Node wrapped;
          wrapped.kind = Node::Kind::kRepeat;
          wrapped.min = min;
          wrapped.max = max;
          wrapped.subs.push_back(std::move(concat.subs.back()));
          concat.subs.back() = std::move(wrapped);
          repeat = true;
          break;
        }
        case '\\': {
          auto s = parse_backslash(concat);
          if (!s.ok()) return s;
          break;
        }
        default: {
          const Decoded d = decode_rune(t_);
          t_.remove_prefix(d.width);
          concat.subs.push_back(runes({{d.rune, d.rune}}));
        }
      }
      last_repeat = repeat;
    }
    if (depth > 0 && t_.empty()) return error("missing )");
    return concat;
  }

  Status parse_backslash(Node& concat) {
    if (t_.size() >= 2) {
      switch (t_[1]) {
        case 'A':
          t_.remove_prefix(2);
          concat.subs.push_back(assertion(kBeginText));
          return ok_status();
        case 'z':
          t_.remove_prefix(2);
          concat.subs.push_back(assertion(kEndText));
          return ok_status();
        case 'b':
          t_.remove_prefix(2);
          concat.subs.push_back(assertion(kWordBoundary));
          return ok_status();
        case 'B':
          t_.remove_prefix(2);
          concat.subs.push_back(assertion(kNoWordBoundary));
          return ok_status();
        case 'C':
          return error("invalid escape \\C");
        case 'Q': {
          std::string_view rest = t_.substr(2);
          const std::size_t end = rest.find("\\E");
          std::string_view lit = rest.substr(0, end);
          t_ = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
          while (!lit.empty()) {
            const Decoded d = decode_rune(lit);
            lit.remove_prefix(d.width);
            concat.subs.push_back(runes({{d.rune, d.rune}}));
          }
          return ok_status();
        }
        case 'p':
        case 'P':
          return error("Unicode classes \\p and \\P are not supported");
        default:
          break;
      }
    }
    if (auto cls = perl_class(t_)) {
      t_.remove_prefix(2);
      concat.subs.push_back(runes(std::move(*cls)));
      return ok_status();
    }
    auto r = parse_escape();
    if (!r) return r.error();
    concat.subs.push_back(runes({{*r, *r}}));
    return ok_status();
  }

  // Go's parseEscape: punctuation, octal, hex and C escapes.
  Result<char32_t> parse_escape() {
    std::string_view t = t_.substr(1);
    if (t.empty()) return error("trailing backslash");
    const Decoded d = decode_rune(t);
    const char32_t c = d.rune;
    t.remove_prefix(d.width);
    auto done = [&](char32_t r) -> Result<char32_t> {
      t_ = t;
      return r;
    };
    if (c < 0x80 && !is_alnum(c)) return done(c);
    if (c >= '1' && c <= '7' && (t.empty() || t[0] < '0' || t[0] > '7')) {
      return error("invalid escape (backreference)");
    }
    if (c >= '0' && c <= '7') {
      char32_t r = c - '0';
      for (int i = 1; i < 3 && !t.empty() && t[0] >= '0' && t[0] <= '7'; ++i) {
        r = r * 8 + static_cast<char32_t>(t[0] - '0');
        t.remove_prefix(1);
      }
      return done(r);
    }
    switch (c) {
      case 'x': {
        if (t.empty()) break;
        const Decoded first = decode_rune(t);
        t.remove_prefix(first.width);
        if (first.rune == '{') {
          char32_t r = 0;
          int digits = 0;
          while (true) {
            if (t.empty()) return error("invalid escape \\x{");
            const Decoded h = decode_rune(t);
            t.remove_prefix(h.width);
            if (h.rune == '}') break;
            const int v = unhex(h.rune);
            if (v < 0) return error("invalid escape \\x{");
            r = r * 16 + static_cast<char32_t>(v);
            if (r > kMaxRune) return error("invalid escape \\x{");
            ++digits;
          }
          if (digits == 0) return error("invalid escape \\x{}");
          return done(r);
        }
        if (t.empty()) break;
        const Decoded second = decode_rune(t);
        t.remove_prefix(second.width);
        const int x = unhex(first.rune);
        const int y = unhex(second.rune);
        if (x < 0 || y < 0) break;
        return done(static_cast<char32_t>(x * 16 + y));
      }
      case 'a':
        return done('\a');
      case 'f':
        return done('\f');
      case 'n':
        return done('\n');
      case 'r':
        return done('\r');
      case 't':
        return done('\t');
      case 'v':
        return done('\v');
      default:
        break;
    }
    std::string shown = "invalid escape \\";
    append_utf8(shown, c);
    return error(shown);
  }

  // Go's parseClass with Perl flags: negated classes match "\n", "-" is literal where it cannot
  // form a range, "]" first is literal, [:name:] anywhere in the class.
  Result<Ranges> parse_class() {
    t_.remove_prefix(1);
    bool negate = false;
    if (!t_.empty() && t_[0] == '^') {
      negate = true;
      t_.remove_prefix(1);
    }
    Ranges ranges;
    bool first = true;
    while (t_.empty() || t_[0] != ']' || first) {
      first = false;
      if (t_.size() > 2 && t_[0] == '[' && t_[1] == ':') {
        const std::size_t end = t_.find(":]", 2);
        if (end != std::string_view::npos) {
          bool neg = false;
          const Ranges* named = posix_class(t_.substr(2, end - 2), neg);
          if (named == nullptr) {
            return error("invalid character class range " + std::string(t_.substr(0, end + 2)));
          }
          for (const auto& r : neg ? negated(*named) : *named) ranges.push_back(r);
          t_.remove_prefix(end + 2);
          continue;
        }
      }
      if (t_.size() >= 2 && t_[0] == '\\' && (t_[1] == 'p' || t_[1] == 'P')) {
        return error("Unicode classes \\p and \\P are not supported");
      }
      if (auto perl = perl_class(t_)) {
        t_.remove_prefix(2);
        ranges.insert(ranges.end(), perl->begin(), perl->end());
        continue;
      }
      auto lo = class_char();
      if (!lo) return lo.error();
      char32_t hi = *lo;
      if (t_.size() >= 2 && t_[0] == '-' && t_[1] != ']') {
        t_.remove_prefix(1);
        auto h = class_char();
        if (!h) return h.error();
        hi = *h;
        if (hi < *lo) return error("invalid character class range");
      }
      ranges.emplace_back(*lo, hi);
    }
    t_.remove_prefix(1);
    return negate ? negated(ranges) : normalized(std::move(ranges));
  }

  Result<char32_t> class_char() {
    if (t_.empty()) return error("missing closing ]");
    if (t_[0] == '\\') return parse_escape();
    const Decoded d = decode_rune(t_);
    t_.remove_prefix(d.width);
    return d.rune;
  }

  static Node assertion(Assertion a) {
    Node n;
    n.kind = Node::Kind::kAssert;
    n.assertion = a;
    return n;
  }

  static Node runes(Ranges r) {
    Node n;
    n.kind = Node::Kind::kRunes;
    n.ranges = std::move(r);
    return n;
  }

  std::string_view t_;
};

}  // namespace

struct IgnoreMatcher::Program {
  enum class Op : std::uint8_t { kRunes, kSplit, kJump, kAssert, kMatch };
  struct Inst {
    Op op = Op::kMatch;
    std::uint32_t out = 0;
    std::uint32_t arg = 0;  // kSplit: the other branch; kRunes: first range; kAssert: the kind
    std::uint32_t nranges = 0;
  };
  std::vector<Inst> insts;
  Ranges ranges;

  // Bytes every match must start and end with: most patterns ("**/*.pyc", "src/*.o") are
  // rejected by these alone, without running the NFA.
  std::string literal_prefix;
  std::string literal_suffix;

  static Program compile(const Node& root) {
    Program p;
    p.emit(root);
    p.insts.push_back(Inst{});
    p.find_literals(root);
    return p;
  }

  // Whether the expression matches somewhere in `input`, as Go's MatchString. With `prefix`,
  // whether some path starting with `input` could match: threads still alive after its last rune
  // count, and an expression not anchored by a leading ^ always could.
  bool run(std::string_view input, bool prefix) const {
    if (prefix) {
      const std::size_t n = std::min(input.size(), literal_prefix.size());
      if (input.substr(0, n) != std::string_view(literal_prefix).substr(0, n)) return false;
    } else if (input.substr(0, literal_prefix.size()) != literal_prefix ||
               input.size() < literal_suffix.size() ||
               input.substr(input.size() - literal_suffix.size()) != literal_suffix) {
      return false;
    }
    // Scratch space reused across calls on this thread; `gen` only grows, so marks left by an
    // earlier call or program never look current.
    thread_local Scratch scratch;
    std::vector<std::uint32_t>& clist = scratch.clist;
    std::vector<std::uint32_t>& nlist = scratch.nlist;
    std::vector<std::uint32_t>& stack = scratch.stack;
    std::vector<std::uint64_t>& mark = scratch.mark;
    std::uint64_t& gen = scratch.gen;
    clist.clear();
    if (mark.size() < insts.size()) mark.resize(insts.size(), 0);
    std::size_t pos = 0;
    std::int32_t prev = -1;
    auto rune_at = [&](std::size_t at, std::size_t& width) -> std::int32_t {
      if (at >= input.size()) {
        width = 0;
        return -1;
      }
      const Decoded d = decode_rune(input.substr(at));
      width = d.width;
      return static_cast<std::int32_t>(d.rune);
    };
    // Follows every empty transition from `pc` at a position between runes `before` and
    // `after`; returns true on reaching the match instruction.
    auto add = [&](std::vector<std::uint32_t>& list, std::uint32_t pc, std::int32_t before,
                   std::int32_t after, bool at_begin, bool at_end) {
      stack.assign(1, pc);
      while (!stack.empty()) {
        const std::uint32_t at = stack.back();
        stack.pop_back();
        if (mark[at] == gen) continue;
        mark[at] = gen;
        const Inst& inst = insts[at];
        switch (inst.op) {
          case Op::kMatch:
            return true;
          case Op::kJump:
            stack.push_back(inst.out);
            break;
          case Op::kSplit:
            stack.push_back(inst.arg);
            stack.push_back(inst.out);
            break;
          case Op::kAssert: {
            bool holds = false;
            switch (inst.arg) {
              case kBeginText:
                holds = at_begin;
                break;
              case kEndText:
                holds = at_end;
                break;
              case kWordBoundary:
                holds = is_word(before) != is_word(after);
                break;
              default:
                holds = is_word(before) == is_word(after);
            }
            if (holds) stack.push_back(inst.out);
            break;
          }
          case Op::kRunes:
            list.push_back(at);
            break;
        }
      }
      return false;
    };
    // A raw "|" from the pattern can leave the expression unanchored; then a match may start
    // at any position, and below any directory some path may match.
    const bool anchored = insts[0].op == Op::kAssert && insts[0].arg == kBeginText;
    if (prefix && !anchored) return true;
    std::size_t width = 0;
    std::int32_t cur = rune_at(0, width);
    ++gen;
    if (add(clist, 0, prev, cur, true, input.empty())) return true;
    while (pos < input.size()) {
      if (clist.empty() && anchored) return false;
      std::size_t next_width = 0;
      const std::int32_t next = rune_at(pos + width, next_width);
      const bool last = pos + width >= input.size();
      nlist.clear();
      ++gen;
      for (const std::uint32_t pc : clist) {
        const Inst& inst = insts[pc];
        if (!contains(inst, static_cast<char32_t>(cur))) continue;
        if (prefix && last) return true;
        if (add(nlist, inst.out, cur, next, false, last)) return true;
      }
      std::swap(clist, nlist);
      pos += width;
      prev = cur;
      cur = next;
      width = next_width;
      if (!anchored && add(clist, 0, prev, cur, false, pos >= input.size())) return true;
    }
    return false;
  }

 private:
  struct Scratch {
    std::vector<std::uint32_t> clist;
    std::vector<std::uint32_t> nlist;
    std::vector<std::uint32_t> stack;
    std::vector<std::uint64_t> mark;
    std::uint64_t gen = 0;
  };

  void find_literals(const Node& root) {
    if (root.kind != Node::Kind::kConcat || root.subs.empty()) return;
    const std::vector<Node>& subs = root.subs;
    // A literal rune; U+FFFD is left out since it also matches any invalid byte.
    auto literal = [](const Node& n) {
      return n.kind == Node::Kind::kRunes && n.ranges.size() == 1 &&
             n.ranges[0].first == n.ranges[0].second && n.ranges[0].first != kRuneError;
    };
    auto is = [](const Node& n, Assertion a) {
      return n.kind == Node::Kind::kAssert && n.assertion == a;
    };
    if (is(subs.front(), kBeginText)) {
      for (std::size_t i = 1; i < subs.size() && literal(subs[i]); ++i) {
        append_utf8(literal_prefix, subs[i].ranges[0].first);
      }
    }
    if (is(subs.back(), kEndText)) {
      std::size_t begin = subs.size() - 1;
      while (begin > 0 && literal(subs[begin - 1])) --begin;
      for (std::size_t i = begin; i + 1 < subs.size(); ++i) {
        append_utf8(literal_suffix, subs[i].ranges[0].first);
      }
    }
  }

  bool contains(const Inst& inst, char32_t r) const {
    for (std::uint32_t i = 0; i < inst.nranges; ++i) {
      const auto& [lo, hi] = ranges[inst.arg + i];
      if (r < lo) return false;
      if (r <= hi) return true;
    }
    return false;
  }

  std::uint32_t here() const { return static_cast<std::uint32_t>(insts.size()); }

  void emit(const Node& node) {
    switch (node.kind) {
      case Node::Kind::kRunes: {
        Inst inst{Op::kRunes, here() + 1, static_cast<std::uint32_t>(ranges.size()),
                  static_cast<std::uint32_t>(node.ranges.size())};
        ranges.insert(ranges.end(), node.ranges.begin(), node.ranges.end());
        insts.push_back(inst);
        break;
      }
      case Node::Kind::kAssert:
        insts.push_back(Inst{Op::kAssert, here() + 1, node.assertion, 0});
        break;
      case Node::Kind::kConcat:
        for (const Node& sub : node.subs) emit(sub);
        break;
      case Node::Kind::kAlternate: {
        // split(a, split(b, c)) with every branch jumping to the end.
        std::vector<std::uint32_t> jumps;
        for (std::size_t i = 0; i < node.subs.size(); ++i) {
          std::uint32_t split = 0;
          const bool more = i + 1 < node.subs.size();
          if (more) {
            split = here();
            insts.push_back(Inst{Op::kSplit, split + 1, 0, 0});
          }
          emit(node.subs[i]);
          if (more) {
            jumps.push_back(here());
            insts.push_back(Inst{Op::kJump, 0, 0, 0});
            insts[split].arg = here();
          }
        }
        for (const std::uint32_t j : jumps) insts[j].out = here();
        break;
      }
      case Node::Kind::kRepeat: {
        // x{n,m} is n copies of x, then m-n optional ones (nested), or x* when unbounded.
        const Node& sub = node.subs[0];
        for (int i = 0; i < node.min; ++i) emit(sub);
        if (node.max < 0) {
          const std::uint32_t split = here();
          insts.push_back(Inst{Op::kSplit, split + 1, 0, 0});
          emit(sub);
          insts.push_back(Inst{Op::kJump, split, 0, 0});
          insts[split].arg = here();
        } else {
          std::vector<std::uint32_t> splits;
          for (int i = node.min; i < node.max; ++i) {
            splits.push_back(here());
            insts.push_back(Inst{Op::kSplit, here() + 1, 0, 0});
            emit(sub);
          }
          for (const std::uint32_t split : splits) insts[split].arg = here();
        }
        break;
      }
    }
  }
};

std::string clean_path(std::string_view path) {
  if (path.empty()) return ".";
  const bool rooted = path[0] == '/';
  const std::size_t n = path.size();
  std::string out;
  std::size_t r = 0;
  std::size_t dotdot = 0;
  if (rooted) {
    out += '/';
    r = 1;
    dotdot = 1;
  }
  while (r < n) {
    if (path[r] == '/') {
      ++r;
    } else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
      ++r;
    } else if (path[r] == '.' && path[r + 1] == '.' && (r + 2 == n || path[r + 2] == '/')) {
      r += 2;
      if (out.size() > dotdot) {
        std::size_t w = out.size() - 1;
        while (w > dotdot && out[w] != '/') --w;
        out.resize(w);
      } else if (!rooted) {
        if (!out.empty()) out += '/';
        out += "..";
        dotdot = out.size();
      }
    } else {
      if ((rooted && out.size() != 1) || (!rooted && !out.empty())) out += '/';
      for (; r < n && path[r] != '/'; ++r) out += path[r];
    }
  }
  if (out.empty()) return ".";
  return out;
}

Result<IgnoreMatcher> IgnoreMatcher::parse(std::string_view text) {
  IgnoreMatcher matcher;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const std::string where = ".dockerignore line " + std::to_string(line_no);
    if (line.size() >= kMaxLine) return invalid_argument(where + ": line longer than 64 KiB");
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
    // ignorefile.ReadAll: comments, trimming, cleaning, leading "/" dropped, "!" kept.
    if (!line.empty() && line[0] == '#') continue;
    std::string_view trimmed = trim_space(line);
    if (trimmed.empty()) continue;
    const bool invert = trimmed[0] == '!';
    if (invert) trimmed = trim_space(trimmed.substr(1));
    std::string read;
    if (!trimmed.empty()) {
      read = clean_path(trimmed);
      if (read.size() > 1 && read[0] == '/') read.erase(0, 1);
    }
    if (invert) read.insert(0, "!");

    // patternmatcher.New on what ReadAll returned: trimmed and cleaned once more.
    const std::string_view again = trim_space(read);
    if (again.empty()) continue;
    std::string pattern = clean_path(again);
    const std::string shown = where + ": invalid pattern \"" + std::string(line) + "\"";
    Pattern p;
    if (pattern[0] == '!') {
      if (pattern.size() == 1) return invalid_argument(shown + ": \"!\" excludes nothing");
      p.exception = true;
      pattern.erase(0, 1);
    }
    if (auto error = glob_syntax_error(pattern)) return invalid_argument(shown + ": " + *error);
    Translation tr = translate(pattern);
    if (tr.regex) {
      auto node = RegexParser(tr.expr).parse();
      if (!node) return node.error().with_context(shown);
      // Go refuses huge expressions too ("expression too large"); the exact bound differs.
      if (program_size(*node) > kMaxProgram) {
        return invalid_argument(shown + ": expression too large");
      }
      p.kind = Pattern::Kind::kRegex;
      p.program = std::make_shared<const Program>(Program::compile(*node));
    } else if (tr.prefix) {
      p.kind = Pattern::Kind::kPrefix;
    } else if (tr.suffix) {
      p.kind = Pattern::Kind::kSuffix;
    }
    p.text = std::move(pattern);
    matcher.patterns_.push_back(std::move(p));
  }
  return matcher;
}

bool IgnoreMatcher::matches(const Pattern& pattern, std::string_view path) {
  const std::string_view text = pattern.text;
  switch (pattern.kind) {
    case Pattern::Kind::kExact:
      return path == text;
    case Pattern::Kind::kPrefix:
      return path.substr(0, text.size() - 2) == text.substr(0, text.size() - 2);
    case Pattern::Kind::kSuffix: {
      const std::string_view suffix = text.substr(2);
      if (path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix) {
        return true;
      }
      return suffix[0] == '/' && path == suffix.substr(1);
    }
    case Pattern::Kind::kRegex:
      return pattern.program->run(path, false);
  }
  return false;
}

bool IgnoreMatcher::may_match_below(const Pattern& pattern, std::string_view dir) {
  const std::string below = std::string(dir) + "/";
  const std::string_view text = pattern.text;
  switch (pattern.kind) {
    case Pattern::Kind::kExact:
      return text.size() > below.size() && text.substr(0, below.size()) == below;
    case Pattern::Kind::kPrefix: {
      const std::string_view prefix = text.substr(0, text.size() - 2);
      const std::size_t n = std::min(prefix.size(), below.size());
      return prefix.substr(0, n) == std::string_view(below).substr(0, n);
    }
    case Pattern::Kind::kSuffix:
      return true;
    case Pattern::Kind::kRegex:
      return pattern.program->run(below, true);
  }
  return true;
}

IgnoreMatcher::Scope IgnoreMatcher::root() const {
  Scope scope;
  scope.hit_.assign(patterns_.size(), false);
  return scope;
}

IgnoreMatcher::Scope IgnoreMatcher::enter(const Scope& parent, std::string_view dir) const {
  Scope scope;
  scope.hit_.resize(patterns_.size());
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    scope.hit_[i] = parent.hit_[i] || matches(patterns_[i], dir);
    if (scope.hit_[i]) scope.excluded_ = !patterns_[i].exception;
  }
  return scope;
}

bool IgnoreMatcher::excluded(const Scope& parent, std::string_view path) const {
  for (std::size_t i = patterns_.size(); i-- > 0;) {
    if (parent.hit_[i] || matches(patterns_[i], path)) return !patterns_[i].exception;
  }
  return false;
}

bool IgnoreMatcher::excluded(std::string_view relative_path) const {
  std::string path = clean_path(relative_path);
  if (path[0] == '/') path.erase(0, 1);
  if (path.empty() || path == ".") return false;
  Scope scope = root();
  std::size_t slash = 0;
  while ((slash = path.find('/', slash)) != std::string::npos) {
    scope = enter(scope, std::string_view(path).substr(0, slash));
    ++slash;
  }
  return excluded(scope, path);
}

bool IgnoreMatcher::can_skip(const Scope& dir_scope, std::string_view dir) const {
  if (!dir_scope.excluded_) return false;
  std::size_t last = 0;
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (dir_scope.hit_[i]) last = i;
  }
  for (std::size_t j = last + 1; j < patterns_.size(); ++j) {
    if (patterns_[j].exception && may_match_below(patterns_[j], dir)) return false;
  }
  return true;
}

std::vector<std::string> IgnoreMatcher::patterns() const {
  std::vector<std::string> out;
  out.reserve(patterns_.size());
  for (const Pattern& p : patterns_) out.push_back((p.exception ? "!" : "") + p.text);
  return out;
}

}  // namespace odd::engine
