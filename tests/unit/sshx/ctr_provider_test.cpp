#include "sshx/ctr_provider.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace odd::sshx {
namespace {

using Bytes = std::vector<unsigned char>;

Bytes random_bytes(std::size_t n) {
  Bytes out(n);
  REQUIRE(RAND_bytes(out.data(), static_cast<int>(n)) == 1);
  return out;
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

std::string provider_of(const EVP_CIPHER_CTX* ctx) {
  return OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(EVP_CIPHER_CTX_get0_cipher(ctx)));
}

// The reference: the default provider's AES-CTR over all of `data` in one call.
Bytes reference(const Bytes& key, const Bytes& iv, const Bytes& data) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", "provider=default");
  REQUIRE(cipher != nullptr);
  Ctx ctx(EVP_CIPHER_CTX_new());
  REQUIRE(EVP_EncryptInit_ex2(ctx.get(), cipher, key.data(), iv.data(), nullptr) == 1);
  CHECK(provider_of(ctx.get()) == "default");
  Bytes out(data.size());
  int n = 0;
  REQUIRE(EVP_EncryptUpdate(ctx.get(), out.data(), &n, data.data(),
                            static_cast<int>(data.size())) == 1);
  EVP_CIPHER_free(cipher);
  return out;
}

// A context set up the way libssh2 1.10 sets one up: a legacy EVP_CIPHER, EVP_CipherInit.
Ctx libssh2_style(const Bytes& key, const Bytes& iv, int encrypt) {
  Ctx ctx(EVP_CIPHER_CTX_new());
  REQUIRE(EVP_CipherInit(ctx.get(), EVP_aes_128_ctr(), key.data(), iv.data(), encrypt) == 1);
  return ctx;
}

// Runs `data` through `ctx` in calls of the given sizes, cycling through them.
Bytes run(EVP_CIPHER_CTX* ctx, const Bytes& data, const std::vector<std::size_t>& calls) {
  Bytes out(data.size());
  std::size_t at = 0;
  std::size_t failed_calls = 0;
  for (std::size_t i = 0; at < data.size(); ++i) {
    const std::size_t n = std::min(calls[i % calls.size()], data.size() - at);
    if (EVP_Cipher(ctx, out.data() + at, data.data() + at, static_cast<unsigned>(n)) !=
        static_cast<int>(n)) {
      ++failed_calls;
    }
    at += n;
  }
  REQUIRE(failed_calls == 0);
  return out;
}

std::string provider_of(const char* cipher_name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, cipher_name, nullptr);
  REQUIRE(cipher != nullptr);
  std::string name = OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(cipher));
  EVP_CIPHER_free(cipher);
  return name;
}

TEST_CASE("the CTR provider is installed and preferred for AES-128-CTR only") {
  REQUIRE(install_ctr_provider() == "");
  CHECK(install_ctr_provider() == "");
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", nullptr);
  REQUIRE(cipher != nullptr);
  CHECK(std::string(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(cipher))) == kCtrProviderName);
  CHECK(EVP_CIPHER_get_block_size(cipher) == 1);
  CHECK(EVP_CIPHER_get_key_length(cipher) == 16);
  CHECK(EVP_CIPHER_get_iv_length(cipher) == 16);
  CHECK(EVP_CIPHER_get_mode(cipher) == EVP_CIPH_CTR_MODE);
  EVP_CIPHER_free(cipher);
  CHECK(provider_of("AES-256-CTR") == "default");
  CHECK(provider_of("AES-128-CBC") == "default");
  unsigned char random[64];
  CHECK(RAND_bytes(random, sizeof random) == 1);
  EVP_MD* sha = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  REQUIRE(sha != nullptr);
  CHECK(std::string(OSSL_PROVIDER_get0_name(EVP_MD_get0_provider(sha))) == "default");
  EVP_MD_free(sha);
}

TEST_CASE("the CTR provider's output is the default provider's, however the data is fed") {
  REQUIRE(install_ctr_provider() == "");
  const std::vector<std::vector<std::size_t>> feeds = {
      {16}, {1}, {7, 16, 33, 0, 4096}, {16384}, {16383, 1, 16385}, {100000}, {48, 32768, 16}};
  // Counters that carry out of their low 32 and 64 bits within the data, and a random one.
  Bytes wraps32(16, 0);
  std::memset(wraps32.data() + 12, 0xff, 4);
  wraps32[15] = 0xf0;
  Bytes wraps64(16, 0x11);
  std::memset(wraps64.data() + 8, 0xff, 8);
  wraps64[15] = 0x80;
  const Bytes data = random_bytes(200000);
  for (const Bytes& iv : {wraps32, wraps64, random_bytes(16)}) {
    const Bytes key = random_bytes(16);
    const Bytes expected = reference(key, iv, data);
    for (const auto& feed : feeds) {
      CAPTURE(feed.front());
      Ctx enc = libssh2_style(key, iv, 1);
      CHECK(provider_of(enc.get()) == kCtrProviderName);
      CHECK(run(enc.get(), data, feed) == expected);
      Ctx dec = libssh2_style(key, iv, 0);
      CHECK(run(dec.get(), expected, feed) == data);
    }
  }
}

// The same steps on a default-provider context and on one of the provider's, side by side.
struct Twins {
  Twins(const Bytes& key, const Bytes& iv) : theirs(EVP_CIPHER_CTX_new()) {
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", "provider=default");
    REQUIRE(cipher != nullptr);
    REQUIRE(EVP_EncryptInit_ex2(theirs.get(), cipher, key.data(), iv.data(), nullptr) == 1);
    EVP_CIPHER_free(cipher);
    ours = libssh2_style(key, iv, 1);
  }

  void crypt(std::size_t n, std::size_t call) {
    CAPTURE(n);
    const Bytes data = random_bytes(n);
    CHECK(run(ours.get(), data, {call}) == run(theirs.get(), data, {n == 0 ? 1 : n}));
    same_state();
  }

  void init(const Bytes* key, const Bytes* iv) {
    const unsigned char* k = key != nullptr ? key->data() : nullptr;
    const unsigned char* v = iv != nullptr ? iv->data() : nullptr;
    REQUIRE(EVP_EncryptInit_ex2(theirs.get(), nullptr, k, v, nullptr) == 1);
    REQUIRE(EVP_CipherInit_ex(ours.get(), nullptr, nullptr, k, v, 1) == 1);
    same_state();
  }

  void same_state() {
    unsigned char a[16];
    unsigned char b[16];
    REQUIRE(EVP_CIPHER_CTX_get_updated_iv(theirs.get(), a, sizeof a) == 1);
    REQUIRE(EVP_CIPHER_CTX_get_updated_iv(ours.get(), b, sizeof b) == 1);
    CHECK(Bytes(a, a + 16) == Bytes(b, b + 16));
    REQUIRE(EVP_CIPHER_CTX_get_original_iv(theirs.get(), a, sizeof a) == 1);
    REQUIRE(EVP_CIPHER_CTX_get_original_iv(ours.get(), b, sizeof b) == 1);
    CHECK(Bytes(a, a + 16) == Bytes(b, b + 16));
    CHECK(EVP_CIPHER_CTX_get_num(theirs.get()) == EVP_CIPHER_CTX_get_num(ours.get()));
  }

  Ctx theirs;
  Ctx ours;
};

TEST_CASE("the CTR provider follows OpenSSL's CTR through re-keying, new IVs and copies") {
  REQUIRE(install_ctr_provider() == "");
  const Bytes key = random_bytes(16);
  const Bytes key2 = random_bytes(16);
  const Bytes iv = random_bytes(16);
  const Bytes iv2 = random_bytes(16);
  Twins t(key, iv);
  t.crypt(12345, 16);
  t.crypt(7, 3);
  t.init(&key2, nullptr);  // a new key goes on from the running counter, dropping the begun block
  t.crypt(40000, 16);
  t.init(nullptr, &iv2);
  t.crypt(100, 7);
  t.init(nullptr, nullptr);
  t.crypt(20000, 16);
  t.init(&key, &iv);
  t.crypt(50000, 16);

  Twins copied(key, iv);
  copied.crypt(1001, 16);
  Ctx copy(EVP_CIPHER_CTX_new());
  REQUIRE(EVP_CIPHER_CTX_copy(copy.get(), copied.ours.get()) == 1);
  const Bytes tail = random_bytes(30000);
  const Bytes out_copy = run(copy.get(), tail, {4096});
  CHECK(run(copied.ours.get(), tail, {16}) == out_copy);
  CHECK(run(copied.theirs.get(), tail, {30000}) == out_copy);
}

TEST_CASE("the CTR provider needs a key and an IV, given together or apart") {
  REQUIRE(install_ctr_provider() == "");
  const Bytes key = random_bytes(16);
  const Bytes iv = random_bytes(16);
  const Bytes data = random_bytes(5000);
  Ctx ctx(EVP_CIPHER_CTX_new());
  REQUIRE(EVP_CipherInit_ex(ctx.get(), EVP_aes_128_ctr(), nullptr, nullptr, nullptr, 1) == 1);
  unsigned char byte = 0;
  CHECK(EVP_Cipher(ctx.get(), &byte, &byte, 1) == -1);
  REQUIRE(EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, key.data(), nullptr, 1) == 1);
  CHECK(EVP_Cipher(ctx.get(), &byte, &byte, 1) == -1);
  REQUIRE(EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, nullptr, iv.data(), 1) == 1);
  CHECK(run(ctx.get(), data, {33}) == reference(key, iv, data));
}

}  // namespace
}  // namespace odd::sshx
