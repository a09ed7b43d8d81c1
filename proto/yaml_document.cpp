#include "proto/yaml_document.hpp"

#include <yaml-cpp/eventhandler.h>

#include <sstream>
#include <vector>

namespace odd::proto {

namespace {

// Notes where each document starts; the events themselves are not needed.
class DocumentCounter : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  const std::vector<YAML::Mark>& starts() const { return starts_; }

 private:
  std::vector<YAML::Mark> starts_;
};

std::string yaml_at(const YAML::Mark& mark) {
  if (mark.is_null()) return "invalid YAML";
  return "invalid YAML at line " + std::to_string(mark.line + 1) + ", column " +
         std::to_string(mark.column + 1);
}

// YAML::Node converts from anything, so a bare Status would be ambiguous.
Result<YAML::Node> invalid_yaml(std::string message) {
  return {boost::system::in_place_error, invalid_argument(std::move(message))};
}

}  // namespace

Result<YAML::Node> load_yaml_document(std::string_view text) {
  const std::string input(text);
  try {
    // YAML::LoadAll never returns on a stray ',' outside a flow collection (yaml-cpp 0.7,
    // jbeder/yaml-cpp#1040): the parser reports an endless run of empty documents. So documents
    // are counted with at most two calls, and the first one is loaded on its own.
    std::istringstream stream(input);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
    }
    if (counter.starts().size() > 1) {
      return invalid_yaml(yaml_at(counter.starts()[1]) +
                          ": expected a single document (a second one, or a stray ',', "
                          "starts here)");
    }
    return YAML::Load(input);
  } catch (const YAML::Exception& e) {
    return invalid_yaml(describe_yaml_error(e));
  }
}

std::string describe_yaml_error(const YAML::Exception& e) { return yaml_at(e.mark) + ": " + e.msg; }

}  // namespace odd::proto
