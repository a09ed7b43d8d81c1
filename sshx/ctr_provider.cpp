#include "sshx/ctr_provider.hpp"

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>

namespace odd::sshx {

namespace {

// Keystream computed per refill: large enough that OpenSSL's per-call cost vanishes, small
// enough to stay in L1 while it is consumed.
constexpr std::size_t kChunk = 16 * 1024;
constexpr std::size_t kBlock = 16;

// Only AES-128-CTR, the cipher libssh2 offers first and OpenSSH accepts. OpenSSL's random
// generator runs on AES-256-CTR, which stays with the default provider.
constexpr const char* kName = "AES-128-CTR";
constexpr std::size_t kKeyLen = 16;
EVP_CIPHER* inner_cipher = nullptr;  // the default provider's, fetched at install

using Block = std::array<unsigned char, 16>;

// `iv` + `n` as 128-bit big-endian numbers, wrapping: how OpenSSL's CTR steps its counter.
Block add(const Block& iv, std::uint64_t n) {
  Block out = iv;
  unsigned carry = 0;
  for (std::size_t i = out.size(); i-- > 0;) {
    const unsigned sum = out[i] + static_cast<unsigned>(n & 0xff) + carry;
    out[i] = static_cast<unsigned char>(sum);
    carry = sum >> 8;
    n >>= 8;
  }
  return out;
}

struct CtrContext {
  // The counter OpenSSL's CTR would hold now: the block after the last one whose keystream
  // was begun.
  Block running_iv() const { return add(iv, (consumed + kBlock - 1) / kBlock); }

  EVP_CIPHER_CTX* inner = nullptr;  // its counter is at `iv` + generated keystream
  bool has_key = false;
  bool has_iv = false;
  Block first_iv{};            // the IV last given
  Block iv{};                  // the counter at which the keystream restarted
  std::uint64_t consumed = 0;  // keystream bytes used since then
  std::size_t used = kChunk;   // bytes of `keystream` consumed; kChunk means empty
  std::array<unsigned char, kChunk> keystream{};
};

CtrContext* as_ctx(void* vctx) { return static_cast<CtrContext*>(vctx); }

void* newctx(void*) { return new (std::nothrow) CtrContext; }

void freectx(void* vctx) {
  CtrContext* c = as_ctx(vctx);
  if (c == nullptr) return;
  EVP_CIPHER_CTX_free(c->inner);
  OPENSSL_cleanse(c->keystream.data(), c->keystream.size());
  delete c;
}

void* dupctx(void* vctx) {
  const CtrContext* src = as_ctx(vctx);
  auto* dst = new (std::nothrow) CtrContext(*src);
  if (dst == nullptr) return nullptr;
  dst->inner = nullptr;
  if (src->inner != nullptr) {
    dst->inner = EVP_CIPHER_CTX_new();
    if (dst->inner == nullptr || EVP_CIPHER_CTX_copy(dst->inner, src->inner) != 1) {
      freectx(dst);
      return nullptr;
    }
  }
  return dst;
}

// CTR encrypts and decrypts alike, so both initialisations are this one. As in OpenSSL's own
// CTR, every initialisation drops the rest of a begun block, and one without an IV goes on
// from the running counter; the inner context restarts there, as it has run ahead.
int init(void* vctx, const unsigned char* key, std::size_t key_len, const unsigned char* iv,
         std::size_t iv_len, const OSSL_PARAM*) {
  CtrContext* c = as_ctx(vctx);
  if (key != nullptr && key_len != kKeyLen) return 0;
  if (iv != nullptr && iv_len != kBlock) return 0;
  if (c->inner == nullptr) {
    c->inner = EVP_CIPHER_CTX_new();
    if (c->inner == nullptr ||
        EVP_EncryptInit_ex2(c->inner, inner_cipher, nullptr, nullptr, nullptr) != 1) {
      return 0;
    }
  }
  if (iv != nullptr) {
    std::memcpy(c->first_iv.data(), iv, kBlock);
    c->iv = c->first_iv;
    c->has_iv = true;
  } else if (c->has_iv) {
    c->iv = c->running_iv();
  }
  c->consumed = 0;
  c->used = kChunk;
  if (EVP_EncryptInit_ex2(c->inner, nullptr, key, c->has_iv ? c->iv.data() : nullptr, nullptr) !=
      1) {
    return 0;
  }
  c->has_key = c->has_key || key != nullptr;
  return 1;
}

bool refill(CtrContext& c) {
  std::memset(c.keystream.data(), 0, kChunk);
  int out = 0;
  if (EVP_EncryptUpdate(c.inner, c.keystream.data(), &out, c.keystream.data(),
                        static_cast<int>(kChunk)) != 1 ||
      static_cast<std::size_t>(out) != kChunk) {
    return false;
  }
  c.used = 0;
  return true;
}

// Inlined into the 16-byte path, where a call would cost as much as the XOR.
[[gnu::always_inline]] inline void xor_into(unsigned char* out, const unsigned char* in,
                                            const unsigned char* key, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t a;
    std::uint64_t b;
    std::memcpy(&a, in + i, 8);
    std::memcpy(&b, key + i, 8);
    a ^= b;
    std::memcpy(out + i, &a, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<unsigned char>(in[i] ^ key[i]);
}

int cipher(void* vctx, unsigned char* out, std::size_t* out_len, std::size_t out_size,
           const unsigned char* in, std::size_t in_len) {
  CtrContext* c = as_ctx(vctx);
  if (!c->has_key || !c->has_iv || out_size < in_len) return 0;
  if (in_len <= kChunk - c->used) {  // libssh2's 16-byte calls, nearly always
    xor_into(out, in, c->keystream.data() + c->used, in_len);
    c->used += in_len;
    c->consumed += in_len;
    *out_len = in_len;
    return 1;
  }
  std::size_t done = 0;
  while (done < in_len) {
    const std::size_t left = in_len - done;
    if (c->used == kChunk && left >= kChunk) {
      // Nothing computed ahead: whole blocks go straight through the inner context.
      const std::size_t bulk = std::min<std::size_t>(left / kBlock * kBlock, 1u << 30);
      int n = 0;
      if (EVP_EncryptUpdate(c->inner, out + done, &n, in + done, static_cast<int>(bulk)) != 1 ||
          static_cast<std::size_t>(n) != bulk) {
        return 0;
      }
      done += bulk;
      continue;
    }
    if (c->used == kChunk && !refill(*c)) return 0;
    const std::size_t n = std::min(left, kChunk - c->used);
    xor_into(out + done, in + done, c->keystream.data() + c->used, n);
    c->used += n;
    done += n;
  }
  c->consumed += in_len;
  *out_len = in_len;
  return 1;
}

int final(void*, unsigned char*, std::size_t* out_len, std::size_t) {
  *out_len = 0;
  return 1;
}

bool set_size(OSSL_PARAM params[], const char* key, std::size_t value) {
  OSSL_PARAM* p = OSSL_PARAM_locate(params, key);
  return p == nullptr || OSSL_PARAM_set_size_t(p, value) == 1;
}

bool set_int(OSSL_PARAM params[], const char* key, int value) {
  OSSL_PARAM* p = OSSL_PARAM_locate(params, key);
  return p == nullptr || OSSL_PARAM_set_int(p, value) == 1;
}

int get_params(OSSL_PARAM params[]) {
  OSSL_PARAM* mode = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_MODE);
  return (mode == nullptr || OSSL_PARAM_set_uint(mode, EVP_CIPH_CTR_MODE) == 1) &&
         set_size(params, OSSL_CIPHER_PARAM_KEYLEN, kKeyLen) &&
         set_size(params, OSSL_CIPHER_PARAM_IVLEN, kBlock) &&
         set_size(params, OSSL_CIPHER_PARAM_BLOCK_SIZE, 1) &&
         set_int(params, OSSL_CIPHER_PARAM_AEAD, 0) &&
         set_int(params, OSSL_CIPHER_PARAM_CUSTOM_IV, 0) &&
         set_int(params, OSSL_CIPHER_PARAM_CTS, 0) &&
         set_int(params, OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, 0) &&
         set_int(params, OSSL_CIPHER_PARAM_HAS_RAND_KEY, 0);
}

bool set_iv(OSSL_PARAM params[], const char* key, const Block& iv) {
  OSSL_PARAM* p = OSSL_PARAM_locate(params, key);
  if (p == nullptr) return true;
  return OSSL_PARAM_set_octet_string(p, iv.data(), iv.size()) == 1 ||
         OSSL_PARAM_set_octet_ptr(p, iv.data(), iv.size()) == 1;
}

int get_ctx_params(void* vctx, OSSL_PARAM params[]) {
  const CtrContext* c = as_ctx(vctx);
  const Block running = c->running_iv();
  OSSL_PARAM* num = OSSL_PARAM_locate(params, OSSL_CIPHER_PARAM_NUM);
  return (num == nullptr ||
          OSSL_PARAM_set_uint(num, static_cast<unsigned>(c->consumed % kBlock)) == 1) &&
         set_size(params, OSSL_CIPHER_PARAM_KEYLEN, kKeyLen) &&
         set_size(params, OSSL_CIPHER_PARAM_IVLEN, kBlock) &&
         set_iv(params, OSSL_CIPHER_PARAM_IV, c->first_iv) &&
         set_iv(params, OSSL_CIPHER_PARAM_UPDATED_IV, running);
}

// Padding means nothing to CTR; the key length and block position cannot be changed.
int set_ctx_params(void* vctx, const OSSL_PARAM params[]) {
  const CtrContext* c = as_ctx(vctx);
  if (const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_KEYLEN)) {
    std::size_t len = 0;
    if (OSSL_PARAM_get_size_t(p, &len) != 1 || len != kKeyLen) return 0;
  }
  if (const OSSL_PARAM* p = OSSL_PARAM_locate_const(params, OSSL_CIPHER_PARAM_NUM)) {
    unsigned int num = 0;
    if (OSSL_PARAM_get_uint(p, &num) != 1 || num != c->consumed % kBlock) return 0;
  }
  return 1;
}

const OSSL_PARAM kGettable[] = {
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_MODE, nullptr),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, nullptr),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, nullptr),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_BLOCK_SIZE, nullptr),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_AEAD, nullptr),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CUSTOM_IV, nullptr),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_CTS, nullptr),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_TLS1_MULTIBLOCK, nullptr),
    OSSL_PARAM_int(OSSL_CIPHER_PARAM_HAS_RAND_KEY, nullptr),
    OSSL_PARAM_END,
};
const OSSL_PARAM kCtxGettable[] = {
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, nullptr),
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_IVLEN, nullptr),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_NUM, nullptr),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_IV, nullptr, 0),
    OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_UPDATED_IV, nullptr, 0),
    OSSL_PARAM_END,
};
const OSSL_PARAM kCtxSettable[] = {
    OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_KEYLEN, nullptr),
    OSSL_PARAM_uint(OSSL_CIPHER_PARAM_NUM, nullptr),
    OSSL_PARAM_END,
};

const OSSL_PARAM* gettable_params(void*) { return kGettable; }
const OSSL_PARAM* gettable_ctx_params(void*, void*) { return kCtxGettable; }
const OSSL_PARAM* settable_ctx_params(void*, void*) { return kCtxSettable; }

template <typename F>
auto fn(F* f) {
  return reinterpret_cast<void (*)()>(f);
}

const OSSL_DISPATCH kDispatch[] = {
    {OSSL_FUNC_CIPHER_NEWCTX, fn(&newctx)},
    {OSSL_FUNC_CIPHER_FREECTX, fn(&freectx)},
    {OSSL_FUNC_CIPHER_DUPCTX, fn(&dupctx)},
    {OSSL_FUNC_CIPHER_ENCRYPT_INIT, fn(&init)},
    {OSSL_FUNC_CIPHER_DECRYPT_INIT, fn(&init)},
    {OSSL_FUNC_CIPHER_UPDATE, fn(&cipher)},
    {OSSL_FUNC_CIPHER_FINAL, fn(&final)},
    {OSSL_FUNC_CIPHER_CIPHER, fn(&cipher)},
    {OSSL_FUNC_CIPHER_GET_PARAMS, fn(&get_params)},
    {OSSL_FUNC_CIPHER_GET_CTX_PARAMS, fn(&get_ctx_params)},
    {OSSL_FUNC_CIPHER_SET_CTX_PARAMS, fn(&set_ctx_params)},
    {OSSL_FUNC_CIPHER_GETTABLE_PARAMS, fn(&gettable_params)},
    {OSSL_FUNC_CIPHER_GETTABLE_CTX_PARAMS, fn(&gettable_ctx_params)},
    {OSSL_FUNC_CIPHER_SETTABLE_CTX_PARAMS, fn(&settable_ctx_params)},
    {0, nullptr},
};

constexpr const char* kProperties = "provider=odd-ctr";
constexpr const char* kDescription = "AES-CTR from a keystream computed ahead";

const OSSL_ALGORITHM kCiphers[] = {
    {kName, kProperties, kDispatch, kDescription},
    {nullptr, nullptr, nullptr, nullptr},
};

const OSSL_ALGORITHM* query_operation(void*, int operation_id, int* no_cache) {
  *no_cache = 0;
  return operation_id == OSSL_OP_CIPHER ? kCiphers : nullptr;
}

const OSSL_DISPATCH kProvider[] = {
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, fn(&query_operation)},
    {0, nullptr},
};

int provider_init(const OSSL_CORE_HANDLE*, const OSSL_DISPATCH*, const OSSL_DISPATCH** out,
                  void** provctx) {
  static int context;
  *out = kProvider;
  *provctx = &context;
  return 1;
}

std::string install() {
  // FIPS mode sets default properties of its own, which this provider's preference would replace.
  if (EVP_default_properties_is_fips_enabled(nullptr) == 1) return "OpenSSL is in FIPS mode";
  if (OSSL_PROVIDER_load(nullptr, "default") == nullptr) {
    return "OpenSSL's default provider cannot be loaded";
  }
  inner_cipher = EVP_CIPHER_fetch(nullptr, kName, "provider=default");
  if (inner_cipher == nullptr) return "OpenSSL's default provider has no AES-128-CTR";
  if (OSSL_PROVIDER_add_builtin(nullptr, kCtrProviderName, provider_init) != 1 ||
      OSSL_PROVIDER_load(nullptr, kCtrProviderName) == nullptr) {
    return "the provider cannot be loaded";
  }
  if (EVP_set_default_properties(nullptr, "?provider=odd-ctr") != 1) {
    return "OpenSSL refused the provider preference";
  }
  EVP_CIPHER* check = EVP_CIPHER_fetch(nullptr, kName, nullptr);
  const bool ours =
      check != nullptr &&
      std::strcmp(OSSL_PROVIDER_get0_name(EVP_CIPHER_get0_provider(check)), kCtrProviderName) == 0;
  EVP_CIPHER_free(check);
  return ours ? "" : "OpenSSL does not pick the provider";
}

}  // namespace

std::string install_ctr_provider() {
  static std::once_flag once;
  static std::string failure;
  std::call_once(once, [] { failure = install(); });
  return failure;
}

}  // namespace odd::sshx
