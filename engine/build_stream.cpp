#include "engine/build_stream.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>

#include "buildkit_trace.pb.h"

namespace odd::engine {

namespace {

constexpr std::size_t kTailLines = 50;

// Reads "2/3" into 2 and 3.
bool parse_counts(std::string_view text, int& number, int& total) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return false;
  const char* end = text.data() + text.size();
  auto n = std::from_chars(text.data(), text.data() + slash, number);
  auto t = std::from_chars(text.data() + slash + 1, end, total);
  return n.ec == std::errc() && t.ec == std::errc() && n.ptr == text.data() + slash && t.ptr == end;
}

// Splits "[2/3] RUN make" or "[build 2/3] RUN make" into 2, 3 and "RUN make"; false for
// BuildKit's internal vertexes ("[internal] load build definition") and anything else.
bool parse_step_prefix(std::string_view name, int& number, int& total, std::string& label) {
  if (!name.starts_with('[')) return false;
  auto close = name.find("] ");
  if (close == std::string_view::npos) return false;
  std::string_view inside = name.substr(1, close - 1);
  if (auto space = inside.rfind(' '); space != std::string_view::npos) {
    inside = inside.substr(space + 1);
  }
  if (!parse_counts(inside, number, total)) return false;
  label.assign(name.substr(close + 2));
  return true;
}

// "Step 3/7 : RUN make" from the classic builder.
bool parse_classic_step(std::string_view line, int& number, int& total, std::string& label) {
  if (!line.starts_with("Step ")) return false;
  std::string_view rest = line.substr(5);
  auto sep = rest.find(" : ");
  if (!parse_counts(rest.substr(0, sep), number, total)) return false;
  label.assign(sep == std::string_view::npos ? std::string_view() : rest.substr(sep + 3));
  return true;
}

bool decode_base64(std::string_view in, std::string& out) {
  if (in.size() % 4 != 0) return false;
  out.resize(in.size() / 4 * 3);
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return false;
  std::size_t padding = 0;
  if (!in.empty() && in.back() == '=') ++padding;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return true;
}

}  // namespace

BuildStreamParser::BuildStreamParser(ProgressSink on_progress, OutputSink on_output)
    : on_progress_(std::move(on_progress)), on_output_(std::move(on_output)) {}

Status BuildStreamParser::consume_line(std::string_view line) {
  if (line.find_first_not_of(" \t\r\n") == std::string_view::npos) return ok_status();
  auto doc = nlohmann::json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return internal_error("dockerd sent a build progress line that is not JSON: " +
                          std::string(line.substr(0, 200)));
  }
  if (auto it = doc.find("errorDetail"); it != doc.end() && it->is_object()) {
    auto message = it->value("message", std::string());
    if (message.empty()) message = doc.value("error", std::string("build failed"));
    return failure(message);
  }
  if (auto it = doc.find("error"); it != doc.end() && it->is_string()) {
    return failure(it->get<std::string>());
  }
  const std::string id = doc.value("id", std::string());
  auto aux = doc.find("aux");
  if (id == "moby.buildkit.trace" && aux != doc.end() && aux->is_string()) {
    return consume_trace(aux->get<std::string>());
  }
  if (aux != doc.end() && aux->is_object()) {
    auto image = aux->find("ID");
    if (image != aux->end() && image->is_string()) image_id_ = image->get<std::string>();
  }
  if (auto it = doc.find("stream"); it != doc.end() && it->is_string()) {
    return consume_classic_stream(it->get<std::string>());
  }
  if (auto it = doc.find("status"); it != doc.end() && it->is_string()) {
    output(it->get<std::string>());
  }
  return ok_status();
}

Status BuildStreamParser::consume_classic_stream(std::string_view text) {
  partial_.append(text);
  std::size_t start = 0;
  for (auto nl = partial_.find('\n'); nl != std::string::npos; nl = partial_.find('\n', start)) {
    std::string_view line(partial_.data() + start, nl - start);
    int number = 0;
    int total = 0;
    std::string label;
    if (parse_classic_step(line, number, total, label)) step(number, total, std::move(label));
    output(line);
    start = nl + 1;
  }
  partial_.erase(0, start);
  return ok_status();
}

Status BuildStreamParser::consume_trace(std::string_view base64) {
  std::string bytes;
  buildkit::StatusResponse status;
  if (!decode_base64(base64, bytes) || !status.ParseFromString(bytes)) {
    return internal_error("dockerd sent a BuildKit trace record that does not decode");
  }
  for (const auto& vertex : status.vertexes()) {
    int number = 0;
    int total = 0;
    std::string label;
    bool is_step = parse_step_prefix(vertex.name(), number, total, label);
    if (!vertex.error().empty()) failed_vertex_[vertex.digest()] = vertex.name();
    if (!is_step) continue;
    if (vertex.has_completed() && vertex.error().empty()) {
      if (completed_.insert(vertex.digest()).second) {
        progress_.done = std::max(progress_.done, number);
        progress_.total = total;
        if (on_progress_) on_progress_(progress_);
      }
    } else if (vertex.has_started()) {
      step(number, total, std::move(label));
    }
  }
  for (const auto& log : status.logs()) {
    std::string_view msg = log.msg();
    while (!msg.empty()) {
      auto nl = msg.find('\n');
      output(msg.substr(0, nl));
      if (nl == std::string_view::npos) break;
      msg.remove_prefix(nl + 1);
    }
  }
  return ok_status();
}

void BuildStreamParser::output(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (on_output_) on_output_(text);
  tail_.emplace_back(text);
  if (tail_.size() > kTailLines) tail_.pop_front();
}

void BuildStreamParser::step(int number, int total, std::string label) {
  progress_.done = std::max(progress_.done, number - 1);
  progress_.total = total;
  progress_.label = std::move(label);
  if (on_progress_) on_progress_(progress_);
}

Status BuildStreamParser::failure(std::string_view message) const {
  std::string where;
  if (!failed_vertex_.empty()) {
    where = failed_vertex_.begin()->second;
  } else if (progress_.total > 0) {
    where = "step " + std::to_string(progress_.done + 1) + "/" + std::to_string(progress_.total);
    if (!progress_.label.empty()) where += " " + progress_.label;
  }
  std::string text = "build failed";
  if (!where.empty()) text += " at " + where;
  text += ": " + std::string(message);
  return failed_precondition(std::move(text));
}

}  // namespace odd::engine
