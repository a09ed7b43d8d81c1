#pragma once
// What odd reads from SSH key files itself (libssh2 reads the rest): the type of a private key,
// so an RSA key is refused with a clear reason before libssh2 fails on it. Pure functions.

#include <string>
#include <string_view>

namespace odd::sshx {

// The key type of a private key file's text, read from its public part (OpenSSH format) or its
// PEM header: "ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa", "ecdsa" (PEM EC keys), "ssh-dss";
// "" when it cannot be told. Works for passphrase-protected OpenSSH keys too.
std::string private_key_type(std::string_view pem);

}  // namespace odd::sshx
