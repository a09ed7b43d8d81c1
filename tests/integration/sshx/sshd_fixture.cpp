#include "tests/integration/sshx/sshd_fixture.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

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

std::vector<std::string> connection_processes(const std::string& session_pid) {
  std::vector<std::string> pids = {session_pid};
  std::ifstream stat("/proc/" + session_pid + "/stat");
  std::string field;
  for (int i = 0; i < 4 && stat >> field; ++i) {
  }
  if (!field.empty() &&
      read_file("/proc/" + field + "/cmdline").find("[priv]") != std::string::npos) {
    pids.push_back(field);
  }
  return pids;
}

void signal_processes(const std::vector<std::string>& pids, const std::string& signal) {
  if (pids.empty()) return;
  // The monitor can exit between two kill(2) calls once its session process got SIGKILL: only
  // the first pid must still be there.
  std::string command = "kill -" + signal + " " + pids.front();
  if (pids.size() > 1) {
    command += " && { kill -" + signal;
    for (std::size_t i = 1; i < pids.size(); ++i) command += " " + pids[i];
    command += " 2>/dev/null || true; }";
  }
  CHECK(std::system(command.c_str()) == 0);
}

}  // namespace odd::integration
