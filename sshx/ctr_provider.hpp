#pragma once
// An OpenSSL provider that serves AES-128-CTR from a keystream computed ahead in large chunks.
//
// libssh2 1.10 (Debian 12) encrypts and decrypts every packet one 16-byte block per EVP_Cipher
// call. Through OpenSSL 3's default provider such calls run AES-128-CTR about 8 times slower than
// 32 KiB calls do (`odd_bench_ssh cipher`), which held SFTP downloads below OpenSSH's throughput.
// CTR's keystream does not depend on the data: this provider computes it with the default
// provider's own AES-128-CTR, 16 KiB per call, and XORs each small request with the next bytes of
// it, which makes the 16-byte calls about 1.7 times faster. Its output, running IV and block
// position follow the default provider's exactly (tests/unit/sshx/ctr_provider_test.cpp).

#include <string>

namespace odd::sshx {

// The provider's name, as EVP_CIPHER_get0_provider reports it.
inline constexpr const char* kCtrProviderName = "odd-ctr";

// Registers the provider in OpenSSL's default library context, makes it preferred for the one
// name it implements, AES-128-CTR (every other algorithm still comes from the default provider),
// and loads the default provider explicitly, which OpenSSL would otherwise stop loading
// implicitly. Idempotent and thread-safe. Returns "" on success, else why not; on
// failure the process keeps OpenSSL's own implementations.
std::string install_ctr_provider();

}  // namespace odd::sshx
