#include "proto/template.hpp"

#include <algorithm>
#include <numeric>
#include <optional>

namespace odd::proto {

namespace {

constexpr std::string_view kOpen = "${{";
constexpr std::string_view kClose = "}}";
constexpr std::string_view kExpected =
    "expected vars.NAME, matrix.NAME, secrets.NAME, steps.ID.outputs.NAME, "
    "needs.JOB.outputs.NAME, run.id or workdir";
constexpr std::size_t kMaxListed = 10;

struct Token {
  enum Kind { kLiteral, kExpression, kUnterminated } kind;
  std::string_view text;  // the literal, or the expression between the braces
  std::size_t offset;     // of the literal, or of the expression's `${{`
};

// Splits `text` into literals and expressions; an unterminated `${{` ends the list.
std::vector<Token> scan(std::string_view text) {
  std::vector<Token> tokens;
  std::size_t from = 0;
  std::size_t literal_start = 0;
  auto literal_until = [&](std::size_t end) {
    if (end > literal_start) {
      tokens.push_back(
          {Token::kLiteral, text.substr(literal_start, end - literal_start), literal_start});
    }
  };
  while (true) {
    const std::size_t open = text.find(kOpen, from);
    if (open == std::string_view::npos) break;
    // The `$` before a `${{` can only be unconsumed text: `from` always follows a `{` or `}`.
    if (open > from && text[open - 1] == '$') {
      literal_until(open - 1);
      tokens.push_back({Token::kLiteral, text.substr(open, kOpen.size()), open - 1});
      from = literal_start = open + kOpen.size();
      continue;
    }
    literal_until(open);
    const std::size_t body = open + kOpen.size();
    const std::size_t close = text.find(kClose, body);
    if (close == std::string_view::npos) {
      tokens.push_back({Token::kUnterminated, text.substr(open), open});
      return tokens;
    }
    tokens.push_back({Token::kExpression, text.substr(body, close - body), open});
    from = literal_start = close + kClose.size();
  }
  literal_until(text.size());
  return tokens;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_identifier(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(s.front())) return false;
  return std::all_of(s.begin(), s.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9') || c == '-'; });
}

std::vector<std::string_view> split_dots(std::string_view s) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t dot = s.find('.');
    parts.push_back(s.substr(0, dot));
    if (dot == std::string_view::npos) return parts;
    s.remove_prefix(dot + 1);
  }
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest candidate when it is close enough to be a typo.
template <class Names>
std::optional<std::string> closest(std::string_view name, const Names& candidates) {
  const std::size_t limit = name.size() <= 3 ? 1 : 2;
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(name, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

template <class Names>
std::string listed(const Names& names) {
  std::string out;
  std::size_t n = 0;
  for (const auto& name : names) {
    if (n == kMaxListed) return out + ", ...";
    if (n++ != 0) out += ", ";
    out += name;
  }
  return out;
}

template <class Names>
std::vector<std::string_view> keys_of(const Names& map) {
  std::vector<std::string_view> keys;
  for (const auto& [key, value] : map) keys.push_back(key);
  return keys;
}

std::string quoted_expression(std::string_view body) {
  return "'" + std::string(kOpen) + std::string(body) + std::string(kClose) + "'";
}

Result<TemplateRef> parse_expression(const Token& token) {
  const std::string_view ref = trim(token.text);
  if (ref.empty()) {
    return invalid_argument("empty expression " + quoted_expression(token.text) + " at offset " +
                            std::to_string(token.offset) + "; " + std::string(kExpected));
  }
  const auto parts = split_dots(ref);
  if (!std::all_of(parts.begin(), parts.end(), is_identifier)) {
    return invalid_argument("malformed expression " + quoted_expression(token.text) + "; " +
                            std::string(kExpected));
  }
  TemplateRef out;
  out.offset = token.offset;
  const std::string_view ns = parts[0];
  auto shape = [&](std::string_view form) {
    return invalid_argument("malformed reference '" + std::string(ref) + "'; expected " +
                            std::string(form));
  };
  if (ns == "vars" || ns == "matrix" || ns == "secrets") {
    if (parts.size() != 2) return shape(std::string(ns) + ".NAME");
    out.kind = ns == "vars" ? RefKind::kVar : ns == "matrix" ? RefKind::kMatrix : RefKind::kSecret;
    out.name = parts[1];
  } else if (ns == "steps" || ns == "needs") {
    if (parts.size() != 4 || parts[2] != "outputs") {
      return shape(ns == "steps" ? "steps.ID.outputs.NAME" : "needs.JOB.outputs.NAME");
    }
    out.kind = ns == "steps" ? RefKind::kStepOutput : RefKind::kNeedsOutput;
    out.scope = parts[1];
    out.name = parts[3];
  } else if (ns == "run") {
    if (parts.size() != 2 || parts[1] != "id") return shape("run.id");
    out.kind = RefKind::kRunId;
  } else if (ns == "workdir") {
    if (parts.size() != 1) return shape("workdir");
    out.kind = RefKind::kWorkdir;
  } else {
    static constexpr std::string_view kNamespaces[] = {"vars",  "matrix", "secrets", "steps",
                                                       "needs", "run",    "workdir"};
    std::string message =
        "unknown namespace '" + std::string(ns) + "' in " + quoted_expression(token.text) + "; ";
    if (auto guess = closest(ns, kNamespaces))
      return invalid_argument(message + "did you mean '" + *guess + "'?");
    return invalid_argument(message +
                            "expected vars, matrix, secrets, steps, needs, run or workdir");
  }
  return out;
}

const char* noun(RefKind kind) {
  switch (kind) {
    case RefKind::kVar:
      return "variable";
    case RefKind::kMatrix:
      return "matrix key";
    case RefKind::kSecret:
      return "secret";
    default:
      return "name";
  }
}

const char* prefix(RefKind kind) {
  switch (kind) {
    case RefKind::kVar:
      return "vars.";
    case RefKind::kMatrix:
      return "matrix.";
    case RefKind::kSecret:
      return "secrets.";
    case RefKind::kStepOutput:
      return "steps.";
    case RefKind::kNeedsOutput:
      return "needs.";
    default:
      return "";
  }
}

// "unknown variable 'vars.filtr'; did you mean 'vars.filter'?" or the names there are.
template <class Names>
Status unknown(std::string_view what, RefKind kind, std::string_view name, const Names& known,
               std::string_view plural, std::string_view note = "") {
  std::string message = "unknown " + std::string(what) + " '" + prefix(kind) + std::string(name) +
                        "'" + std::string(note);
  if (auto guess = closest(name, known)) {
    return invalid_argument(message + "; did you mean '" + prefix(kind) + *guess + "'?");
  }
  if (std::begin(known) == std::end(known)) {
    return invalid_argument(message + "; there are no " + std::string(plural));
  }
  return invalid_argument(message + "; known: " + listed(known));
}

Status missing_output(const TemplateRef& ref, const TemplateValues& outputs) {
  std::string message =
      std::string(prefix(ref.kind)) + ref.scope + " has no output '" + ref.name + "'";
  if (auto guess = closest(ref.name, keys_of(outputs))) {
    message += " (did you mean '" + *guess + "'?)";
  }
  if (outputs.empty()) return invalid_argument(message + "; it has none yet");
  return invalid_argument(message + "; it has: " + listed(keys_of(outputs)));
}

const TemplateValues* outputs_of(const std::map<std::string, TemplateValues, std::less<>>& all,
                                 std::string_view scope) {
  auto it = all.find(scope);
  return it == all.end() ? nullptr : &it->second;
}

Result<std::string_view> lookup(const TemplateRef& ref, const TemplateContext& context) {
  auto value_in = [&](const TemplateValues& values,
                      std::string_view plural) -> Result<std::string_view> {
    auto it = values.find(ref.name);
    if (it == values.end())
      return unknown(noun(ref.kind), ref.kind, ref.name, keys_of(values), plural);
    return std::string_view(it->second);
  };
  switch (ref.kind) {
    case RefKind::kVar:
      return value_in(context.vars, "vars");
    case RefKind::kMatrix:
      return value_in(context.matrix, "matrix keys");
    case RefKind::kSecret:
      return value_in(context.secrets, "secrets");
    case RefKind::kStepOutput:
    case RefKind::kNeedsOutput: {
      const bool step = ref.kind == RefKind::kStepOutput;
      const auto& all = step ? context.steps : context.needs;
      const TemplateValues* outputs = outputs_of(all, ref.scope);
      if (outputs == nullptr) {
        return unknown(step ? "step" : "needed job", ref.kind, ref.scope, keys_of(all),
                       step ? "earlier steps" : "needed jobs");
      }
      auto it = outputs->find(ref.name);
      if (it == outputs->end()) return missing_output(ref, *outputs);
      return std::string_view(it->second);
    }
    case RefKind::kRunId:
      return std::string_view(context.run_id);
    case RefKind::kWorkdir:
      return std::string_view(context.workdir);
  }
  return internal_error("unhandled reference kind");
}

Status check_one(const TemplateRef& ref, const ReferenceScope& scope) {
  auto in = [&](const std::set<std::string, std::less<>>& names, std::string_view name) {
    return names.find(name) != names.end();
  };
  switch (ref.kind) {
    case RefKind::kVar:
      if (!in(scope.vars, ref.name))
        return unknown("variable", ref.kind, ref.name, scope.vars, "vars");
      break;
    case RefKind::kMatrix:
      if (!in(scope.matrix, ref.name)) {
        return unknown("matrix key", ref.kind, ref.name, scope.matrix, "matrix keys");
      }
      break;
    case RefKind::kSecret:
      if (!in(scope.secrets, ref.name)) {
        return unknown("secret", ref.kind, ref.name, scope.secrets, "secrets");
      }
      break;
    case RefKind::kStepOutput:
      if (!in(scope.steps, ref.scope)) {
        return unknown("step", ref.kind, ref.scope, scope.steps, "earlier steps",
                       " (not an earlier step of this job)");
      }
      break;
    case RefKind::kNeedsOutput:
      if (!in(scope.needs, ref.scope)) {
        return unknown("job", ref.kind, ref.scope, scope.needs, "needed jobs",
                       " (not in this job's needs)");
      }
      break;
    case RefKind::kRunId:
    case RefKind::kWorkdir:
      break;
  }
  return ok_status();
}

Status unterminated(const Token& token) {
  return invalid_argument("unterminated '${{' at offset " + std::to_string(token.offset) +
                          " (close it with '}}', or write '$${{' for a literal '${{')");
}

}  // namespace

std::string TemplateRef::to_string() const {
  switch (kind) {
    case RefKind::kStepOutput:
    case RefKind::kNeedsOutput:
      return prefix(kind) + scope + ".outputs." + name;
    case RefKind::kRunId:
      return "run.id";
    case RefKind::kWorkdir:
      return "workdir";
    default:
      return prefix(kind) + name;
  }
}

Result<Rendered> render(std::string_view text, const TemplateContext& context) {
  Rendered out;
  out.text.reserve(text.size());
  for (const Token& token : scan(text)) {
    if (token.kind == Token::kLiteral) {
      out.text += token.text;
      continue;
    }
    if (token.kind == Token::kUnterminated) return unterminated(token);
    auto ref = parse_expression(token);
    if (!ref) return ref.error();
    auto value = lookup(*ref, context);
    if (!value) return value.error();
    out.text += *value;
    if (ref->kind == RefKind::kSecret) {
      auto name = std::lower_bound(out.secret_names.begin(), out.secret_names.end(), ref->name);
      if (name == out.secret_names.end() || *name != ref->name) {
        out.secret_names.insert(name, ref->name);
      }
      if (!value->empty() && std::find(out.secret_values.begin(), out.secret_values.end(),
                                       *value) == out.secret_values.end()) {
        out.secret_values.emplace_back(*value);
      }
    }
  }
  return out;
}

bool has_template(std::string_view text) { return text.find("${{") != std::string_view::npos; }

std::vector<TemplateRef> references(std::string_view text) {
  std::vector<TemplateRef> refs;
  for (const Token& token : scan(text)) {
    if (token.kind != Token::kExpression) continue;
    if (auto ref = parse_expression(token)) refs.push_back(std::move(*ref));
  }
  return refs;
}

Status check_references(std::string_view text, const ReferenceScope& scope) {
  for (const Token& token : scan(text)) {
    if (token.kind == Token::kLiteral) continue;
    if (token.kind == Token::kUnterminated) return unterminated(token);
    auto ref = parse_expression(token);
    if (!ref) return ref.error();
    if (Status status = check_one(*ref, scope); !status.ok()) return status;
  }
  return ok_status();
}

}  // namespace odd::proto
