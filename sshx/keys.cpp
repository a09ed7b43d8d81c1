#include "sshx/keys.hpp"

#include <openssl/evp.h>

#include <cstdint>

namespace odd::sshx {

namespace {

std::string base64_decode(std::string_view text) {
  std::string clean;
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ') clean.push_back(c);
  }
  std::string out(3 * (clean.size() / 4) + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(clean.data()),
                                static_cast<int>(clean.size()));
  if (n < 0) return {};
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

std::string private_key_type(std::string_view pem) {
  if (pem.find("BEGIN RSA PRIVATE KEY") != std::string::npos) return "ssh-rsa";
  if (pem.find("BEGIN EC PRIVATE KEY") != std::string::npos) return "ecdsa";
  if (pem.find("BEGIN DSA PRIVATE KEY") != std::string::npos) return "ssh-dss";
  constexpr std::string_view kBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view kEnd = "-----END OPENSSH PRIVATE KEY-----";
  const std::size_t begin = pem.find(kBegin);
  const std::size_t end = pem.find(kEnd);
  if (begin == std::string::npos || end == std::string::npos || end < begin) return "";
  const std::string blob = base64_decode(
      std::string_view(pem).substr(begin + kBegin.size(), end - begin - kBegin.size()));
  // "openssh-key-v1\0", cipher, kdf, kdf options, key count, then the first public key whose
  // first field is its type.
  std::size_t pos = 15;
  auto read_u32 = [&](std::uint32_t& value) {
    if (pos + 4 > blob.size()) return false;
    value = (std::uint32_t(static_cast<unsigned char>(blob[pos])) << 24) |
            (std::uint32_t(static_cast<unsigned char>(blob[pos + 1])) << 16) |
            (std::uint32_t(static_cast<unsigned char>(blob[pos + 2])) << 8) |
            std::uint32_t(static_cast<unsigned char>(blob[pos + 3]));
    pos += 4;
    return true;
  };
  auto skip_string = [&]() {
    std::uint32_t n = 0;
    if (!read_u32(n) || pos + n > blob.size()) return false;
    pos += n;
    return true;
  };
  if (blob.compare(0, 15, std::string_view("openssh-key-v1\0", 15)) != 0) return "";
  std::uint32_t count = 0, public_size = 0, type_size = 0;
  if (!skip_string() || !skip_string() || !skip_string() || !read_u32(count) || count < 1 ||
      !read_u32(public_size) || !read_u32(type_size) || pos + type_size > blob.size()) {
    return "";
  }
  return blob.substr(pos, type_size);
}

}  // namespace odd::sshx
