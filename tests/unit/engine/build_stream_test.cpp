#include "engine/build_stream.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "buildkit_trace.pb.h"

namespace odd::engine {
namespace {

struct Recorded {
  std::vector<BuildProgress> progress;
  std::vector<std::string> output;
  Status status;
};

// Feeds a captured dockerd 20.10 /build response line by line.
Recorded replay(const std::string& name) {
  std::ifstream in(std::string(ODD_TEST_DATA_DIR) + "/" + name);
  REQUIRE_MESSAGE(in.good(), "missing test data " << name);
  Recorded r;
  BuildStreamParser parser([&](const BuildProgress& p) { r.progress.push_back(p); },
                           [&](std::string_view line) { r.output.emplace_back(line); });
  std::string line;
  while (std::getline(in, line)) {
    Status s = parser.consume_line(line);
    if (!s.ok() && r.status.ok()) r.status = s;
  }
  if (r.status.ok() && !parser.image_id().empty()) r.output.push_back("ID " + parser.image_id());
  return r;
}

bool contains(const std::vector<std::string>& lines, std::string_view text) {
  for (const auto& l : lines) {
    if (l.find(text) != std::string::npos) return true;
  }
  return false;
}

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string trace_line(const buildkit::StatusResponse& status) {
  return R"({"id":"moby.buildkit.trace","aux":")" + base64(status.SerializeAsString()) + "\"}";
}

TEST_CASE("a classic build's steps become progress and its image id is reported") {
  auto r = replay("build-v1-ok.ndjson");
  CHECK(r.status.ok());
  REQUIRE(!r.progress.empty());
  CHECK(r.progress.back().total == 3);
  CHECK(r.progress.back().done == 2);
  CHECK(r.progress.back().label.starts_with("RUN "));
  CHECK(contains(r.output, "hello-from-run"));
  CHECK(contains(r.output, "ID sha256:"));
}

TEST_CASE("a classic build that fails names the step and keeps dockerd's message") {
  auto r = replay("build-v1-fail.ndjson");
  CHECK(r.status.code() == Code::kFailedPrecondition);
  CHECK(r.status.message().find("step 4/4 RUN") != std::string::npos);
  CHECK(r.status.message().find("returned a non-zero code: 3") != std::string::npos);
  CHECK(contains(r.output, "failing now"));
}

TEST_CASE("a BuildKit build's trace records decode into progress, output and the image id") {
  auto r = replay("build-v2-ok.ndjson");
  CHECK(r.status.ok());
  REQUIRE(!r.progress.empty());
  // BuildKit numbers COPY and RUN only: FROM scratch is no step of its own.
  CHECK(r.progress.back().total == 2);
  CHECK(r.progress.back().done == 2);
  CHECK(contains(r.output, "hello-from-run"));
  CHECK(contains(r.output, "ID sha256:a249d7c425c5"));
}

TEST_CASE("a BuildKit build that fails names the failing step and its output") {
  auto r = replay("build-v2-fail.ndjson");
  CHECK(r.status.code() == Code::kFailedPrecondition);
  CHECK(r.status.message().find("[3/3] RUN") != std::string::npos);
  CHECK(r.status.message().find("exit code: 3") != std::string::npos);
  CHECK(contains(r.output, "failing now"));
}

TEST_CASE("a classic step line split across stream pieces is still one step") {
  Recorded r;
  BuildStreamParser parser([&](const BuildProgress& p) { r.progress.push_back(p); },
                           [&](std::string_view line) { r.output.emplace_back(line); });
  CHECK(parser.consume_line(R"({"stream":"Step 2/"})").ok());
  CHECK(r.progress.empty());
  CHECK(parser.consume_line(R"({"stream":"5 : COPY a b\n"})").ok());
  REQUIRE(r.progress.size() == 1);
  CHECK(r.progress[0].done == 1);
  CHECK(r.progress[0].total == 5);
  CHECK(r.progress[0].label == "COPY a b");
}

TEST_CASE("BuildKit steps count as done when completed, internal vertexes do not") {
  Recorded r;
  BuildStreamParser parser([&](const BuildProgress& p) { r.progress.push_back(p); },
                           [&](std::string_view line) { r.output.emplace_back(line); });
  buildkit::StatusResponse status;
  auto* internal = status.add_vertexes();
  internal->set_digest("sha256:i");
  internal->set_name("[internal] load build definition from Dockerfile");
  internal->mutable_started()->set_seconds(1);
  internal->mutable_completed()->set_seconds(2);
  auto* step = status.add_vertexes();
  step->set_digest("sha256:s");
  step->set_name("[builder 2/4] RUN make -j2");
  step->mutable_started()->set_seconds(1);
  auto* log = status.add_logs();
  log->set_vertex("sha256:s");
  log->set_msg("compiling a\ncompiling b\n");
  CHECK(parser.consume_line(trace_line(status)).ok());
  REQUIRE(r.progress.size() == 1);
  CHECK(r.progress[0].done == 1);
  CHECK(r.progress[0].total == 4);
  CHECK(r.progress[0].label == "RUN make -j2");
  CHECK(r.output == std::vector<std::string>{"compiling a", "compiling b"});

  status.Clear();
  step = status.add_vertexes();
  step->set_digest("sha256:s");
  step->set_name("[builder 2/4] RUN make -j2");
  step->mutable_started()->set_seconds(1);
  step->mutable_completed()->set_seconds(3);
  CHECK(parser.consume_line(trace_line(status)).ok());
  CHECK(parser.consume_line(trace_line(status)).ok());
  REQUIRE(r.progress.size() == 2);
  CHECK(r.progress[1].done == 2);
}

TEST_CASE("a line that is not JSON or a trace that does not decode is an internal error") {
  BuildStreamParser parser(nullptr, nullptr);
  CHECK(parser.consume_line("not json").code() == Code::kInternal);
  CHECK(parser.consume_line(R"({"id":"moby.buildkit.trace","aux":"@@@@"})").code() ==
        Code::kInternal);
  CHECK(parser.consume_line("   ").ok());
}

}  // namespace
}  // namespace odd::engine
