#pragma once
// `${{ ... }}` templating of run-spec strings (DESIGN §5): rendering against one job's context,
// listing the references a string makes, and checking them statically for the spec validator.
// Pure functions over values; safe from any thread.
//
// Syntax: `${{ REF }}`, spaces or tabs allowed inside the braces, where REF is vars.NAME,
// matrix.NAME, secrets.NAME, steps.ID.outputs.NAME, needs.JOB.outputs.NAME, run.id or workdir
// (NAME, ID, JOB: [A-Za-z_][A-Za-z0-9_-]*). The expression ends at the first `}}`.
// Escape: `$${{` is a literal `${{` and the only escape; `$$` anywhere else stays `$$`, so shell
// text such as `echo $$` is unaffected. Substituted values are never rendered again.

#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace odd::proto {

// Name → value; transparent, so lookups take a string_view.
using TemplateValues = std::map<std::string, std::string, std::less<>>;

// What `${{ }}` can see while one step of one job is rendered. Owned by the caller.
struct TemplateContext {
  TemplateValues vars;
  TemplateValues matrix;                                     // original (unsanitised) values
  TemplateValues secrets;                                    // name → value
  std::map<std::string, TemplateValues, std::less<>> steps;  // step id → its outputs so far
  std::map<std::string, TemplateValues, std::less<>> needs;  // needed job → its outputs
  std::string run_id;
  std::string workdir;
};

enum class RefKind { kVar, kMatrix, kSecret, kStepOutput, kNeedsOutput, kRunId, kWorkdir };

// One well-formed `${{ REF }}` in a text.
struct TemplateRef {
  RefKind kind = RefKind::kVar;
  std::string scope;       // the step id (kStepOutput) or job (kNeedsOutput); empty otherwise
  std::string name;        // NAME; empty for kRunId and kWorkdir
  std::size_t offset = 0;  // where its `${{` starts in the text

  // The reference as written without braces: "steps.image.outputs.image", "run.id".
  std::string to_string() const;
  friend bool operator==(const TemplateRef&, const TemplateRef&) = default;
};

// A rendered text and the secrets it took in. The daemon masks `secret_values` (on top of every
// configured secret) wherever the text may show up: a command line, an error, an event.
struct Rendered {
  std::string text;
  std::vector<std::string> secret_names;   // sorted, each once
  std::vector<std::string> secret_values;  // each distinct non-empty value once, in order of use

  bool uses_secrets() const { return !secret_names.empty(); }
};

// Substitutes every `${{ REF }}` of `text` from `context` and turns `$${{` into `${{`.
// invalid_argument on the first problem, saying precisely what it is: unterminated `${{`, empty
// or malformed expression, unknown namespace, unknown name (with "did you mean" when one is
// close), a step or needed job without that output (listing the outputs it has).
Result<Rendered> render(std::string_view text, const TemplateContext& context);

// Whether render() could give anything but `text` itself: it contains `${{` (an expression, an
// escaped `$${{` or a malformed one).
bool has_template(std::string_view text);

// The well-formed references of `text` in order, duplicates kept. Malformed expressions are
// skipped (check_references and render report them); nothing after an unterminated `${{` counts.
std::vector<TemplateRef> references(std::string_view text);

// What a spec string may refer to at the place it sits, for checks before anything runs.
// Step outputs are not known statically (`::set-output` adds them at run time), so only step ids
// and needed jobs are checked, not their output names.
struct ReferenceScope {
  std::set<std::string, std::less<>> vars;
  std::set<std::string, std::less<>> matrix;   // the job's matrix keys
  std::set<std::string, std::less<>> secrets;  // secret names the daemon or spec declares
  std::set<std::string, std::less<>> steps;    // ids of the earlier steps of the same job
  std::set<std::string, std::less<>> needs;    // the jobs in this job's `needs`
};

// ok when every expression of `text` is well formed and refers to something in `scope`;
// otherwise invalid_argument for the first problem, with the same wording as render().
Status check_references(std::string_view text, const ReferenceScope& scope);

}  // namespace odd::proto
