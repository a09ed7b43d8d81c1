#pragma once
// TestIo: an oddc::Io over string streams, a map for the environment and a fresh working
// directory under /tmp, for driving run_main() like a user would.

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "oddc/commands.hpp"

namespace odd::oddc::testing {

class TempDir {
 public:
  TempDir() {
    char dir[] = "/tmp/oddc-t-XXXXXX";
    if (::mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = dir;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name, const std::string& content) const {
    const std::string at = path_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(at).parent_path());
    std::ofstream(at, std::ios::binary) << content;
    return at;
  }

 private:
  std::string path_;
};

struct TestIo {
  std::ostringstream out;
  std::ostringstream err;
  std::istringstream in;
  std::map<std::string, std::string> env;
  TempDir cwd;
  Io io{out, err, in,
        [this](const std::string& name) -> std::optional<std::string> {
          const auto it = env.find(name);
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        cwd.path()};

  // Runs oddc with `args` (without the program name).
  int run(std::vector<std::string> args) {
    std::vector<const char*> argv{"oddc"};
    for (const auto& a : args) argv.push_back(a.c_str());
    return run_main(static_cast<int>(argv.size()), argv.data(), io);
  }

  // stderr's lines.
  std::vector<std::string> err_lines() const {
    std::vector<std::string> lines;
    std::istringstream s(err.str());
    for (std::string line; std::getline(s, line);) lines.push_back(line);
    return lines;
  }
};

}  // namespace odd::oddc::testing
