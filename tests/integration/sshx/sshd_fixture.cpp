#include "tests/integration/sshx/sshd_fixture.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>

#include "tests/integration/support.hpp"

namespace odd::integration {

const SshdFixture& sshd() {
  static const SshdFixture fixture = [] {
    SshdFixture f;
    const char* dir = std::getenv("ODD_TEST_SSHD_DIR");
    if (dir == nullptr || *dir == '\0') {
      FAIL("ODD_TEST_SSHD_DIR is not set: run through tests/support/with-dockerd.sh");
    }
    f.dir = dir;
    std::ifstream env(f.dir / "env");
    std::string line;
    while (std::getline(env, line)) {
      const auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = line.substr(0, eq);
      const std::string value = line.substr(eq + 1);
      if (key == "ODD_SSHD_ADDR") f.address = value;
      if (key == "ODD_SSHD_PORT") f.port = static_cast<std::uint16_t>(std::stoi(value));
      if (key == "ODD_SSHD_USER") f.user = value;
    }
    if (f.address.empty() || f.port == 0 || f.user.empty()) {
      FAIL("cannot read " << (f.dir / "env").string());
    }
    return f;
  }();
  return fixture;
}

sshx::SessionOptions sshd_options(const std::string& key) {
  const SshdFixture& s = sshd();
  sshx::SessionOptions options;
  options.name = "test-sshd";
  options.address = s.address;
  options.port = s.port;
  options.user = s.user;
  options.identity = s.dir / key;
  options.known_hosts = s.dir / "known_hosts";
  options.connect_timeout = Millis(10'000);
  return options;
}

std::string remote_scratch() {
  static std::atomic<int> counter{0};
  const std::filesystem::path path =
      sshd().dir / "remote" / ("t-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
  return path.string();
}

}  // namespace odd::integration
