#pragma once
// The private OpenSSH sshd that tests/support/sshd.sh starts, as the sshx integration tests see
// it: $ODD_TEST_SSHD_DIR holds its env file, keys and known_hosts files. Session options for it,
// and a remote scratch directory per test under DIR/remote.

#include <filesystem>
#include <string>

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

}  // namespace odd::integration
