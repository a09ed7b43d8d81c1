#include "proto/template.hpp"

#include <doctest/doctest.h>

#include <string>

namespace odd::proto {
namespace {

TemplateContext sample_context() {
  TemplateContext c;
  c.vars = {{"filter", "smoke"}, {"report_url", "http://r/x"}, {"empty", ""}};
  c.matrix = {{"distro", "arch"}, {"python", "3.11"}};
  c.secrets = {{"TESTER_ENV", "s3cr3t"}, {"TOKEN", "tok"}, {"BLANK", ""}};
  c.steps["image"] = {{"image", "odd-arch:4c1d2e3f4a5b"}, {"exit_code", "0"}};
  c.steps["quiet"] = {};
  c.needs["build"] = {{"digest", "sha256:ab"}};
  c.run_id = "20261122-142030Z-3f2a";
  c.workdir = "/home/runner/work";
  return c;
}

std::string rendered(std::string_view text) {
  auto out = render(text, sample_context());
  REQUIRE_MESSAGE(out.has_value(), out.error().message());
  return out->text;
}

std::string render_error(std::string_view text) {
  auto out = render(text, sample_context());
  REQUIRE(!out.has_value());
  CHECK(out.error().code() == Code::kInvalidArgument);
  return out.error().message();
}

TEST_CASE("every namespace renders from the context, with or without spaces in the braces") {
  CHECK(rendered("odd-${{ matrix.distro }}") == "odd-arch");
  CHECK(rendered("${{matrix.distro}}") == "arch");
  CHECK(rendered("${{ \tvars.filter\t }}") == "smoke");
  CHECK(rendered("${{ steps.image.outputs.image }}") == "odd-arch:4c1d2e3f4a5b");
  CHECK(rendered("${{ needs.build.outputs.digest }}") == "sha256:ab");
  CHECK(rendered("${{ run.id }}") == "20261122-142030Z-3f2a");
  CHECK(rendered("${{ workdir }}:/workspace") == "/home/runner/work:/workspace");
  CHECK(rendered("a${{ vars.empty }}b") == "ab");
  CHECK(rendered("${{ matrix.distro }}-${{ matrix.python }}/${{ run.id }}") ==
        "arch-3.11/20261122-142030Z-3f2a");
}

TEST_CASE("text without an expression renders to itself, dollars and braces included") {
  for (std::string_view text :
       {"", "plain", "echo $$; exec x", "${ x }", "{{ x }}", "$ {{", "}}", "${", "${{"}) {
    if (text == "${{") continue;
    CHECK(rendered(text) == text);
    CHECK(!has_template(text));
  }
}

TEST_CASE("$${{ is a literal ${{ and is the only escape") {
  CHECK(rendered("$${{ matrix.distro }}") == "${{ matrix.distro }}");
  CHECK(rendered("a $${{ b") == "a ${{ b");
  CHECK(rendered("$$${{ matrix.distro }}") == "$${{ matrix.distro }}");
  CHECK(rendered("$${{ x }} ${{ matrix.distro }}") == "${{ x }} arch");
  CHECK(rendered("echo $$ ${{ matrix.distro }}") == "echo $$ arch");
  CHECK(references("$${{ vars.filter }}").empty());
  CHECK(has_template("$${{ x"));
}

TEST_CASE("substituted values are never rendered again") {
  auto c = sample_context();
  c.vars["nested"] = "${{ secrets.TOKEN }}";
  auto out = render("${{ vars.nested }}", c);
  REQUIRE(out.has_value());
  CHECK(out->text == "${{ secrets.TOKEN }}");
  CHECK(!out->uses_secrets());
}

TEST_CASE("rendering reports the secrets it substituted, for masking") {
  auto out = render(
      "${{ secrets.TOKEN }}:${{ secrets.TESTER_ENV }}@${{ secrets.TOKEN }}"
      "${{ secrets.BLANK }}",
      sample_context());
  REQUIRE(out.has_value());
  CHECK(out->text == "tok:s3cr3t@tok");
  CHECK(out->uses_secrets());
  CHECK(out->secret_names == std::vector<std::string>{"BLANK", "TESTER_ENV", "TOKEN"});
  CHECK(out->secret_values == std::vector<std::string>{"tok", "s3cr3t"});

  auto plain = render("${{ vars.filter }}", sample_context());
  REQUIRE(plain.has_value());
  CHECK(!plain->uses_secrets());
  CHECK(plain->secret_values.empty());
}

TEST_CASE("an unknown name is an error with a did-you-mean when one is close") {
  CHECK(render_error("${{ vars.filtr }}") ==
        "unknown variable 'vars.filtr'; did you mean 'vars.filter'?");
  CHECK(render_error("${{ matrix.distr }}") ==
        "unknown matrix key 'matrix.distr'; did you mean 'matrix.distro'?");
  CHECK(render_error("${{ secrets.TOKN }}") ==
        "unknown secret 'secrets.TOKN'; did you mean 'secrets.TOKEN'?");
  CHECK(render_error("${{ vars.zzzzzz }}") ==
        "unknown variable 'vars.zzzzzz'; known: empty, filter, report_url");
  CHECK(render_error("${{ steps.imag.outputs.image }}") ==
        "unknown step 'steps.imag'; did you mean 'steps.image'?");
  CHECK(render_error("${{ needs.test.outputs.x }}") ==
        "unknown needed job 'needs.test'; known: build");
  TemplateContext empty;
  auto out = render("${{ vars.x }}", empty);
  REQUIRE(!out.has_value());
  CHECK(out.error().message() == "unknown variable 'vars.x'; there are no vars");
}

TEST_CASE("a step without the output asked for lists the outputs it has") {
  CHECK(render_error("${{ steps.image.outputs.imag }}") ==
        "steps.image has no output 'imag' (did you mean 'image'?); it has: exit_code, image");
  CHECK(render_error("${{ steps.image.outputs.zzzzzz }}") ==
        "steps.image has no output 'zzzzzz'; it has: exit_code, image");
  CHECK(render_error("${{ steps.quiet.outputs.x }}") ==
        "steps.quiet has no output 'x'; it has none yet");
  CHECK(render_error("${{ needs.build.outputs.digets }}") ==
        "needs.build has no output 'digets' (did you mean 'digest'?); it has: digest");
}

TEST_CASE("an unknown namespace is named, with a did-you-mean when one is close") {
  CHECK(render_error("${{ var.filter }}") ==
        "unknown namespace 'var' in '${{ var.filter }}'; did you mean 'vars'?");
  CHECK(render_error("${{ github.sha }}") ==
        "unknown namespace 'github' in '${{ github.sha }}'; expected vars, matrix, secrets, "
        "steps, needs, run or workdir");
}

TEST_CASE("unterminated, empty and malformed expressions are errors saying so") {
  CHECK(render_error("odd-${{ matrix.distro") ==
        "unterminated '${{' at offset 4 (close it with '}}', or write '$${{' for a literal "
        "'${{')");
  CHECK(render_error("${{ matrix.distro }} ${{").starts_with("unterminated '${{' at offset 21"));
  CHECK(render_error("x${{  }}").starts_with("empty expression '${{  }}' at offset 1; expected "));
  CHECK(render_error("${{}}").starts_with("empty expression"));
  CHECK(render_error("${{ vars.a b }}").starts_with("malformed expression '${{ vars.a b }}'; "));
  CHECK(render_error("${{ vars..a }}").starts_with("malformed expression"));
  CHECK(render_error("${{ vars.1a }}").starts_with("malformed expression"));
  CHECK(render_error("${{ 'x' }}").starts_with("malformed expression"));
  CHECK(render_error("${{ vars }}") == "malformed reference 'vars'; expected vars.NAME");
  CHECK(render_error("${{ vars.a.b }}") == "malformed reference 'vars.a.b'; expected vars.NAME");
  CHECK(render_error("${{ steps.image.image }}") ==
        "malformed reference 'steps.image.image'; expected steps.ID.outputs.NAME");
  CHECK(render_error("${{ needs.build }}") ==
        "malformed reference 'needs.build'; expected needs.JOB.outputs.NAME");
  CHECK(render_error("${{ run.number }}") == "malformed reference 'run.number'; expected run.id");
  CHECK(render_error("${{ workdir.x }}") == "malformed reference 'workdir.x'; expected workdir");
}

TEST_CASE("names may hold dashes and underscores but not start with a digit") {
  auto c = sample_context();
  c.steps["build-image"] = {{"image_id", "x"}};
  auto out = render("${{ steps.build-image.outputs.image_id }}", c);
  REQUIRE(out.has_value());
  CHECK(out->text == "x");
}

TEST_CASE("references lists the well-formed expressions in order with their offsets") {
  auto refs = references(
      "${{ vars.a }}-${{ matrix.b }} ${{ secrets.C }}${{ steps.s.outputs.o }}"
      "${{ needs.j.outputs.p }}${{ run.id }}${{ workdir }}${{ bad ns }}${{ vars.a }}${{ unclosed");
  REQUIRE(refs.size() == 8);
  CHECK(refs[0] == TemplateRef{RefKind::kVar, "", "a", 0});
  CHECK(refs[1] == TemplateRef{RefKind::kMatrix, "", "b", 14});
  CHECK(refs[2].kind == RefKind::kSecret);
  CHECK(refs[3] == TemplateRef{RefKind::kStepOutput, "s", "o", 46});
  CHECK(refs[4].kind == RefKind::kNeedsOutput);
  CHECK(refs[4].scope == "j");
  CHECK(refs[5].kind == RefKind::kRunId);
  CHECK(refs[6].kind == RefKind::kWorkdir);
  CHECK(refs[7].name == "a");
  CHECK(refs[3].to_string() == "steps.s.outputs.o");
  CHECK(refs[4].to_string() == "needs.j.outputs.p");
  CHECK(refs[5].to_string() == "run.id");
  CHECK(refs[6].to_string() == "workdir");
  CHECK(refs[2].to_string() == "secrets.C");
  CHECK(references("no templates").empty());
}

ReferenceScope sample_scope() {
  ReferenceScope s;
  s.vars = {"filter"};
  s.matrix = {"distro"};
  s.secrets = {"TESTER_ENV"};
  s.steps = {"image"};
  s.needs = {"build"};
  return s;
}

TEST_CASE("check_references accepts what the scope knows, whatever the step outputs") {
  CHECK(check_references("odd-${{ matrix.distro }} ${{ vars.filter }} ${{ secrets.TESTER_ENV }} "
                         "${{ steps.image.outputs.anything }} ${{ needs.build.outputs.x }} "
                         "${{ run.id }} ${{ workdir }} $${{ nope }}",
                         sample_scope())
            .ok());
  CHECK(check_references("", ReferenceScope{}).ok());
}

TEST_CASE("check_references refuses later steps, jobs outside needs and unknown names") {
  auto scope = sample_scope();
  CHECK(check_references("${{ steps.suite.outputs.x }}", scope).message() ==
        "unknown step 'steps.suite' (not an earlier step of this job); known: image");
  CHECK(check_references("${{ steps.imag.outputs.x }}", scope).message() ==
        "unknown step 'steps.imag' (not an earlier step of this job); did you mean "
        "'steps.image'?");
  CHECK(check_references("${{ steps.image.outputs.x }}", ReferenceScope{}).message() ==
        "unknown step 'steps.image' (not an earlier step of this job); there are no earlier "
        "steps");
  CHECK(check_references("${{ needs.test.outputs.x }}", scope).message() ==
        "unknown job 'needs.test' (not in this job's needs); known: build");
  CHECK(check_references("${{ vars.filtr }}", scope).message() ==
        "unknown variable 'vars.filtr'; did you mean 'vars.filter'?");
  CHECK(check_references("${{ matrix.os }}", scope).message() ==
        "unknown matrix key 'matrix.os'; known: distro");
  CHECK(check_references("${{ secrets.TESTER_EN }}", scope).message() ==
        "unknown secret 'secrets.TESTER_EN'; did you mean 'secrets.TESTER_ENV'?");
  CHECK(check_references("${{ vars.filter", scope).message().starts_with("unterminated"));
  CHECK(check_references("${{ }}", scope).code() == Code::kInvalidArgument);
}

}  // namespace
}  // namespace odd::proto
