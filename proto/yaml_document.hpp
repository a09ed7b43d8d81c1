#pragma once
// Reading one YAML document out of a text, shared by the run spec and the daemon config:
// yaml-cpp's exceptions become Status values that name the line and column. Values only.

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::proto {

// Loads `text` as a single YAML document; an empty text is a null node. invalid_argument
// "invalid YAML at line L, column C: ..." for a syntax error and for a second document.
Result<YAML::Node> load_yaml_document(std::string_view text);

// "invalid YAML at line L, column C: <message>", for an exception thrown while reading nodes.
std::string describe_yaml_error(const YAML::Exception& e);

}  // namespace odd::proto
