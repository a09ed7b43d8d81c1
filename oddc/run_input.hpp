#pragma once
// What `oddc run` reads besides its flags: the spec text, the variables of -e (KEY=VALUE or
// @FILE.json|yaml) and the values of --secret NAME from the environment. Reads small files with
// a size bound; otherwise pure. Any thread.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "proto/api_types.hpp"

namespace odd::oddc {

// Looks up an environment variable: std::nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// The spec at `path`, relative to `cwd`, or standard input for "-"; at most
// proto::kMaxSpecBytes. invalid_argument "cannot read PATH: <reason>" or naming the limit.
Result<std::string> read_spec(const std::string& path, std::istream& in, const std::string& cwd);

// -e arguments in order, a later one overriding an earlier one: "KEY=VALUE", or "@FILE" whose
// name ends in .json, .yaml or .yml, holding a mapping of names to strings, numbers, booleans or
// null (turned into strings; null is ""). Names match [A-Za-z_][A-Za-z0-9_-]*. invalid_argument
// naming the argument, or the file and the key at fault.
Result<proto::OutputMap> parse_vars(const std::vector<std::string>& args, const std::string& cwd);

// --secret NAME...: each value from the environment variable NAME. invalid_argument naming the
// first variable that is unset.
Result<proto::OutputMap> collect_secrets(const std::vector<std::string>& names,
                                         const EnvLookup& env);

}  // namespace odd::oddc
