#include "sshx/keys.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "sshx/exec.hpp"

namespace odd::sshx {
namespace {

namespace fs = std::filesystem;

// A key made by ssh-keygen in a fresh directory, as its private file's text.
std::string generated_key(const std::string& args) {
  const fs::path dir = fs::temp_directory_path() / ("odd-keys-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "key";
  fs::remove(file);
  fs::remove(dir / "key.pub");
  const std::string command = "ssh-keygen -q " + args + " -f " + file.string() + " >/dev/null";
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  fs::remove_all(dir);
  return text.str();
}

TEST_CASE("the type of an OpenSSH private key is read from its public part") {
  CHECK(private_key_type(generated_key("-t ed25519 -N ''")) == "ssh-ed25519");
  CHECK(private_key_type(generated_key("-t ecdsa -b 256 -N ''")) == "ecdsa-sha2-nistp256");
  CHECK(private_key_type(generated_key("-t rsa -b 2048 -N ''")) == "ssh-rsa");
}

TEST_CASE("a passphrase-protected key still tells its type") {
  CHECK(private_key_type(generated_key("-t ed25519 -N secret-words")) == "ssh-ed25519");
}

TEST_CASE("PEM keys are told by their header; anything else is unknown") {
  CHECK(private_key_type(generated_key("-t rsa -b 2048 -m PEM -N ''")) == "ssh-rsa");
  CHECK(private_key_type("-----BEGIN EC PRIVATE KEY-----\nMHc=\n-----END EC PRIVATE KEY-----\n") ==
        "ecdsa");
  CHECK(private_key_type("not a key") == "");
  CHECK(private_key_type("-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n"
                         "-----END OPENSSH PRIVATE KEY-----\n") == "");
  CHECK(private_key_type("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n"
                         "-----END OPENSSH PRIVATE KEY-----\n") == "");
}

TEST_CASE("shell_quote gives sh back every byte of its argument") {
  const std::string tricky = "it's a \"test\" $HOME `id` \\ ; | & * \n end";
  const std::string command = "printf '%s' " + shell_quote(tricky);
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[256];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  ::pclose(pipe);
  CHECK(out == tricky);
  CHECK(shell_quote("") == "''");
}

}  // namespace
}  // namespace odd::sshx
