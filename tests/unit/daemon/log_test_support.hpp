#pragma once
// Helpers shared by the log pipeline's unit tests: a temporary directory removed at scope exit,
// whole-file reads and writes, the stored text of a log (through the reader) and running the zstd
// CLI. Test-thread only.

#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

#include "daemon/log_file.hpp"

namespace odd::daemon::testing {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/odd-log-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path.string());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::filesystem::path& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  REQUIRE_MESSAGE(out.good(), "cannot write " << path.string());
}

// Everything the complete frames of `path` hold, decompressed by LogFileReader.
inline std::string stored_text(const std::filesystem::path& path) {
  std::string text;
  const Status s = decompress_log_file(path, [&](std::string_view piece) {
    text.append(piece);
    return ok_status();
  });
  REQUIRE_MESSAGE(s.ok(), s.to_string());
  return text;
}

// `zstd -dc path`: its standard output and whether it exited 0.
struct ZstdOutput {
  std::string out;
  bool ok = false;
};

inline ZstdOutput zstd_decompress(const std::filesystem::path& path) {
  const std::string command = "zstd -dc -q -- '" + path.string() + "' 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  ZstdOutput result;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.out.append(buf, n);
  result.ok = ::pclose(pipe) == 0;
  return result;
}

inline std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xffu);
  return s;
}

}  // namespace odd::daemon::testing
