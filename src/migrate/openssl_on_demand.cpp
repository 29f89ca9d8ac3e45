// OpenSSL loaded on first use (native builds, TERN_OPENSSL_ON_DEMAND).
//
// Linking libssl and libcrypto costs every tern process about 4 ms of CPU
// before main() (~23,000 relocations in libcrypto alone: docs/performance.md,
// "Time to first instruction"), though only `migrate`, `serve`, `gateway`,
// `keygen` and a program's gateway link use TLS. So tern does not link them:
// this file defines the OpenSSL functions the migrate layer calls, with
// OpenSSL's own declarations (the headers check every signature), each
// forwarding to the real one, found in libssl.so (which brings libcrypto)
// when the first of them is called. Cross builds are static and link
// OpenSSL as before (cmake/Dependencies.cmake).
#if TERN_OPENSSL_ON_DEMAND

#include "tern/error.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <mutex>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

namespace tern::migrate {
namespace {

// The libssl whose headers this build was compiled with (its soname
// carries the ABI version).
#define TERN_STRINGIFY(x) #x
#define TERN_SONAME(v) "libssl.so." TERN_STRINGIFY(v)
constexpr const char* kLibssl = TERN_SONAME(OPENSSL_SHLIB_VERSION);

void* libssl() {
  static void* handle = nullptr;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    handle = ::dlopen(kLibssl, RTLD_NOW | RTLD_LOCAL);
    if (!handle) error = ::dlerror();
  });
  if (!handle) throw Error(fmt::format("TLS needs OpenSSL, which cannot be loaded: {}", error));
  return handle;
}

} // namespace

void* openssl_symbol(const char* name) {
  void* handle = libssl();
  void* symbol = ::dlsym(handle, name);
  if (!symbol) throw Error(fmt::format("TLS: {} has no {}", kLibssl, name));
  return symbol;
}

} // namespace tern::migrate

// One definition per function the migrate layer calls (nm -u of
// libtern_migrate.a against libssl and libcrypto): a new call to another
// OpenSSL function fails to link until it is added here.
#define TERN_OPENSSL_FORWARD(ret, name, params, args)                                              \
  extern "C" ret name params {                                                                     \
    static const auto real =                                                                       \
        reinterpret_cast<decltype(&name)>(tern::migrate::openssl_symbol(#name));                   \
    return real args;                                                                              \
  }

TERN_OPENSSL_FORWARD(void, BIO_clear_flags, (BIO * b, int flags), (b, flags))
TERN_OPENSSL_FORWARD(int, BIO_free, (BIO * a), (a))
TERN_OPENSSL_FORWARD(void*, BIO_get_data, (BIO * a), (a))
TERN_OPENSSL_FORWARD(int, BIO_get_new_index, (void), ())
TERN_OPENSSL_FORWARD(BIO_METHOD*, BIO_meth_new, (int type, const char* name), (type, name))
TERN_OPENSSL_FORWARD(int, BIO_meth_set_ctrl, (BIO_METHOD * m, long (*ctrl)(BIO*, int, long, void*)),
                     (m, ctrl))
TERN_OPENSSL_FORWARD(int, BIO_meth_set_read, (BIO_METHOD * m, int (*read)(BIO*, char*, int)),
                     (m, read))
TERN_OPENSSL_FORWARD(int, BIO_meth_set_write,
                     (BIO_METHOD * m, int (*write)(BIO*, const char*, int)), (m, write))
TERN_OPENSSL_FORWARD(BIO*, BIO_new, (const BIO_METHOD* type), (type))
TERN_OPENSSL_FORWARD(void, BIO_set_data, (BIO * a, void* ptr), (a, ptr))
TERN_OPENSSL_FORWARD(void, BIO_set_flags, (BIO * b, int flags), (b, flags))
TERN_OPENSSL_FORWARD(void, BIO_set_init, (BIO * a, int init), (a, init))
TERN_OPENSSL_FORWARD(int, CRYPTO_memcmp, (const void* a, const void* b, size_t len), (a, b, len))
TERN_OPENSSL_FORWARD(void, ERR_clear_error, (void), ())
TERN_OPENSSL_FORWARD(unsigned long, ERR_peek_last_error, (void), ())
TERN_OPENSSL_FORWARD(const char*, ERR_reason_error_string, (unsigned long e), (e))
TERN_OPENSSL_FORWARD(unsigned char*, EVP_Q_mac,
                     (OSSL_LIB_CTX * libctx, const char* name, const char* propq,
                      const char* subalg, const OSSL_PARAM* params, const void* key, size_t keylen,
                      const unsigned char* data, size_t datalen, unsigned char* out, size_t outsize,
                      size_t* outlen),
                     (libctx, name, propq, subalg, params, key, keylen, data, datalen, out, outsize,
                      outlen))
TERN_OPENSSL_FORWARD(int, OPENSSL_init_ssl, (uint64_t opts, const OPENSSL_INIT_SETTINGS* settings),
                     (opts, settings))
TERN_OPENSSL_FORWARD(int, RAND_bytes, (unsigned char* buf, int num), (buf, num))
TERN_OPENSSL_FORWARD(const SSL_CIPHER*, SSL_CIPHER_find, (SSL * ssl, const unsigned char* ptr),
                     (ssl, ptr))
TERN_OPENSSL_FORWARD(const EVP_MD*, SSL_CIPHER_get_handshake_digest, (const SSL_CIPHER* c), (c))
TERN_OPENSSL_FORWARD(long, SSL_CTX_ctrl, (SSL_CTX * ctx, int cmd, long larg, void* parg),
                     (ctx, cmd, larg, parg))
TERN_OPENSSL_FORWARD(void, SSL_CTX_free, (SSL_CTX * ctx), (ctx))
TERN_OPENSSL_FORWARD(SSL_CTX*, SSL_CTX_new, (const SSL_METHOD* meth), (meth))
TERN_OPENSSL_FORWARD(int, SSL_CTX_set_ciphersuites, (SSL_CTX * ctx, const char* str), (ctx, str))
TERN_OPENSSL_FORWARD(uint64_t, SSL_CTX_set_options, (SSL_CTX * ctx, uint64_t op), (ctx, op))
TERN_OPENSSL_FORWARD(void, SSL_CTX_set_psk_find_session_callback,
                     (SSL_CTX * ctx, SSL_psk_find_session_cb_func cb), (ctx, cb))
TERN_OPENSSL_FORWARD(void, SSL_CTX_set_psk_use_session_callback,
                     (SSL_CTX * ctx, SSL_psk_use_session_cb_func cb), (ctx, cb))
TERN_OPENSSL_FORWARD(void, SSL_SESSION_free, (SSL_SESSION * s), (s))
TERN_OPENSSL_FORWARD(SSL_SESSION*, SSL_SESSION_new, (void), ())
TERN_OPENSSL_FORWARD(int, SSL_SESSION_set1_master_key,
                     (SSL_SESSION * s, const unsigned char* in, size_t len), (s, in, len))
TERN_OPENSSL_FORWARD(int, SSL_SESSION_set_cipher, (SSL_SESSION * s, const SSL_CIPHER* cipher),
                     (s, cipher))
TERN_OPENSSL_FORWARD(int, SSL_SESSION_set_protocol_version, (SSL_SESSION * s, int version),
                     (s, version))
TERN_OPENSSL_FORWARD(long, SSL_ctrl, (SSL * ssl, int cmd, long larg, void* parg),
                     (ssl, cmd, larg, parg))
TERN_OPENSSL_FORWARD(int, SSL_do_handshake, (SSL * s), (s))
TERN_OPENSSL_FORWARD(int, SSL_export_keying_material,
                     (SSL * s, unsigned char* out, size_t olen, const char* label, size_t llen,
                      const unsigned char* context, size_t contextlen, int use_context),
                     (s, out, olen, label, llen, context, contextlen, use_context))
TERN_OPENSSL_FORWARD(void, SSL_free, (SSL * ssl), (ssl))
TERN_OPENSSL_FORWARD(int, SSL_get_error, (const SSL* s, int ret_code), (s, ret_code))
TERN_OPENSSL_FORWARD(void*, SSL_get_ex_data, (const SSL* ssl, int idx), (ssl, idx))
TERN_OPENSSL_FORWARD(int, SSL_is_init_finished, (const SSL* s), (s))
TERN_OPENSSL_FORWARD(int, SSL_is_server, (const SSL* s), (s))
TERN_OPENSSL_FORWARD(SSL*, SSL_new, (SSL_CTX * ctx), (ctx))
TERN_OPENSSL_FORWARD(int, SSL_pending, (const SSL* s), (s))
TERN_OPENSSL_FORWARD(int, SSL_read_ex, (SSL * ssl, void* buf, size_t num, size_t* readbytes),
                     (ssl, buf, num, readbytes))
TERN_OPENSSL_FORWARD(int, SSL_session_reused, (const SSL* s), (s))
TERN_OPENSSL_FORWARD(void, SSL_set_accept_state, (SSL * s), (s))
TERN_OPENSSL_FORWARD(void, SSL_set_bio, (SSL * s, BIO* rbio, BIO* wbio), (s, rbio, wbio))
TERN_OPENSSL_FORWARD(void, SSL_set_connect_state, (SSL * s), (s))
TERN_OPENSSL_FORWARD(int, SSL_set_ex_data, (SSL * ssl, int idx, void* data), (ssl, idx, data))
TERN_OPENSSL_FORWARD(int, SSL_shutdown, (SSL * s), (s))
TERN_OPENSSL_FORWARD(int, SSL_write_ex, (SSL * s, const void* buf, size_t num, size_t* written),
                     (s, buf, num, written))
TERN_OPENSSL_FORWARD(const SSL_METHOD*, TLS_client_method, (void), ())
TERN_OPENSSL_FORWARD(const SSL_METHOD*, TLS_server_method, (void), ())

#endif // TERN_OPENSSL_ON_DEMAND
