#pragma once
// The private OpenSSH sshd that tests/support/sshd.sh starts, as the sshx integration tests see
// it: $ODD_TEST_SSHD_DIR holds its env file, keys and known_hosts files. Session options for it,
// and a remote scratch directory per test under DIR/remote.

#include <filesystem>
#include <string>
#include <vector>

#include "sshx/session.hpp"

namespace odd::integration {

struct SshdFixture {
  std::filesystem::path dir;  // $ODD_TEST_SSHD_DIR
  std::string address;
  std::uint16_t port = 0;
  std::string user;
};

// The running test sshd; fails the test with a hint when $ODD_TEST_SSHD_DIR is not set.
const SshdFixture& sshd();

// Options that connect to the test sshd as its user with `key` (a file name in DIR) and the
// plain known_hosts file.
sshx::SessionOptions sshd_options(const std::string& key = "id_ed25519");

// A fresh directory under DIR/remote, writable by the test user: "/tmp/.../remote/<unique>".
std::string remote_scratch();

// The sshd processes serving one connection: the session process whose pid a remote `echo
// $PPID` printed, and its privileged monitor when it has one (never the listener).
std::vector<std::string> connection_processes(const std::string& session_pid);

// Sends SIG`signal` ("KILL", "STOP") to each of `pids`; the test fails unless the first (the
// session process) was there to receive it.
void signal_processes(const std::vector<std::string>& pids, const std::string& signal);

}  // namespace odd::integration
