// Fuzzes templating: render(), references(), check_references() and has_template() on arbitrary
// text with a small fixed context never crash or throw; a text without `${{` renders to itself;
// every reference listed lies on a `${{` of the text; a text that renders has all its refs
// resolvable. Violations trap.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proto/template.hpp"

namespace {

using odd::proto::ReferenceScope;
using odd::proto::TemplateContext;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

TemplateContext make_context() {
  TemplateContext c;
  c.vars = {{"filter", "${{ vars.filter }}"}, {"a", ""}};
  c.matrix = {{"distro", "arch"}};
  c.secrets = {{"S", "hush"}, {"E", ""}};
  c.steps["image"] = {{"image", "odd:1"}, {"exit_code", "0"}};
  c.steps["empty"] = {};
  c.needs["build"] = {{"digest", "sha256:x"}};
  c.run_id = "20261122-142030Z-3f2a";
  c.workdir = "/w";
  return c;
}

ReferenceScope make_scope() {
  ReferenceScope s;
  s.vars = {"filter", "a"};
  s.matrix = {"distro"};
  s.secrets = {"S", "E"};
  s.steps = {"image", "empty"};
  s.needs = {"build"};
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const TemplateContext context = make_context();
  static const ReferenceScope scope = make_scope();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto rendered = odd::proto::render(text, context);
  const auto refs = odd::proto::references(text);
  const auto status = odd::proto::check_references(text, scope);
  const bool templated = odd::proto::has_template(text);

  if (!templated) {
    check(rendered.has_value() && rendered->text == text);
    check(refs.empty());
    check(status.ok());
  }
  for (const auto& ref : refs) {
    check(ref.offset + 3 <= text.size() && text.substr(ref.offset, 3) == "${{");
  }
  // The scope knows exactly what the context holds for vars, matrix, secrets and step ids, so
  // render can fail where check_references passes only on a step or job output name.
  if (rendered.has_value()) {
    check(status.ok());
    check(rendered->uses_secrets() == !rendered->secret_names.empty());
  } else {
    check(rendered.error().code() == odd::Code::kInvalidArgument);
    check(!rendered.error().message().empty());
  }
  if (!status.ok()) check(status.code() == odd::Code::kInvalidArgument);
  return 0;
}
