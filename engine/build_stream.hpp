#pragma once
// BuildStreamParser reads dockerd's POST /build response, one JSON object per line, from either
// builder: the classic one ({"stream": "Step 3/7 : RUN ..."}, {"aux": {"ID": ...}}) or BuildKit
// ({"id": "moby.buildkit.trace", "aux": "<base64 StatusResponse protobuf>"}, "moby.image.id").
// It turns them into progress, output lines, the image id, and a failure naming the step.
// Pure: no I/O; one instance per build, used by one strand.

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::engine {

struct BuildProgress {
  int done = 0;       // steps finished
  int total = 0;      // steps in the Dockerfile; 0 until known
  std::string label;  // the step being worked on: "RUN make"
};

class BuildStreamParser {
 public:
  using ProgressSink = std::function<void(const BuildProgress&)>;
  using OutputSink = std::function<void(std::string_view line)>;

  BuildStreamParser(ProgressSink on_progress, OutputSink on_output);

  // Consumes one line of the response. Returns failed_precondition with dockerd's message and the
  // step it failed in ("step 3/7 RUN false: ...") when the line reports a failed build, and
  // internal for a line that is not JSON. Lines after a failure are still consumed.
  Status consume_line(std::string_view line);

  // "sha256:..." once the builder has reported the image, else "".
  const std::string& image_id() const { return image_id_; }
  const BuildProgress& progress() const { return progress_; }
  // The last lines the build printed, for error reports.
  const std::deque<std::string>& tail() const { return tail_; }

 private:
  Status consume_classic_stream(std::string_view text);
  Status consume_trace(std::string_view base64);
  void output(std::string_view text);
  void step(int number, int total, std::string label);
  Status failure(std::string_view message) const;

  ProgressSink on_progress_;
  OutputSink on_output_;
  BuildProgress progress_;
  std::string image_id_;
  std::string partial_;  // classic output arrives in pieces not aligned to lines
  std::deque<std::string> tail_;
  std::map<std::string, std::string> failed_vertex_;  // BuildKit digest -> name, errored ones
  std::set<std::string> completed_;                   // BuildKit step vertexes seen completed
};

}  // namespace odd::engine
