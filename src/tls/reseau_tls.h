/*
 * reseau_tls.h -- TLS 1.0-1.2 for reseau, on BearSSL, as a channel handler.
 * MIT licensed, as reseau.h.
 *
 * QUICK START
 *   Include reseau.h first, then this header. In exactly one C or C++ file
 *   (the one with RESEAU_IMPLEMENTATION, or any other that includes reseau.h
 *   before any system header):
 *       #define RESEAU_IMPLEMENTATION
 *       #define RESEAU_TLS_IMPLEMENTATION
 *       #include "reseau.h"
 *       #include "reseau_tls.h"
 *   Link with -lbearssl (Debian: libbearssl-dev; it has no pkg-config file),
 *   and on Windows also -lbcrypt (the OS's random generator), -lcrypt32 (the
 *   Windows certificate store) and -lws2_32.
 *
 *       rs_tls_ctx_options_t o = {0};            // a client, verifying peers
 *       rs_tls_ctx_t *ctx = rs_tls_ctx_new(&o, &err);   // the system CAs
 *       rs_tls_connection_options_t c = {0};
 *       c.ctx = ctx;
 *       c.server_name = "example.org";
 *       rs_channel_installer_t *tls = rs_tls_installer_new(&c, &err);
 *       // pass tls to the client bootstrap before your own installer:
 *       // on_setup then fires after the handshake.
 *
 * KEYS THAT STAY ELSEWHERE
 *   rs_tls_ctx_options_t.private_key takes a sign function instead of a key
 *   (a TPM, a remote signer); >>pkcs11 gives one for a key on a PKCS#11
 *   token (rs_pkcs11_lib_new, rs_pkcs11_key_new,
 *   rs_pkcs11_key_get_tls_private_key). The answer may come later: with
 *   sign_async, the handshake waits for rs_tls_sign_op_complete (any
 *   thread) while its loop runs on.
 *
 * LIMITS
 *   No TLS 1.3 (BearSSL has none): a peer that insists on it fails with
 *   RS_ETLS_PROTOCOL_VERSION; another TLS engine, a TLS 1.3 one, can be
 *   plugged in under the same handler (>>engine: rs_tls_engine_vtable_t).
 *   No session tickets (session IDs only), no OCSP or CRL checks. BearSSL
 *   cannot pause a handshake: while a key that signs asynchronously
 *   handshakes, the engine saves its state (about 34 KiB) before each step,
 *   to take the step again once the signature is there. Debian's BearSSL is
 *   0.6, the 2018 release; to build
 *   against a newer one, put its include directory and library first on the
 *   compiler's paths (-I, -L), as nothing here depends on 0.6's layout beyond
 *   its public API.
 *
 * WINDOWS (mingw-w64; tested under Wine only)
 *   Entropy comes from BCryptGenRandom (link -lbcrypt). CA files, CA
 *   directories (ca_dir, $SSL_CERT_DIR) and PEM files are read as on POSIX,
 *   by Windows path. The system store is $SSL_CERT_FILE, $SSL_CERT_DIR, then
 *   the Windows ROOT certificate store through crypt32 (link -lcrypt32).
 *   BearSSL for mingw: see tools/cross/bearssl-mingw.sh.
 *
 * WITHOUT SOCKETS OR AN OS (firmware)
 *   With RESEAU_NO_SOCKETS the installers are left out: put the handler on a
 *   channel yourself (rs_tls_channel_add, to the right of a transport
 *   handler). Without an OS, each context needs random_fn (a hardware RNG)
 *   and has no ca_dir or system store (RS_ENOTSUP); certificates come from
 *   memory (or the C library's files), validity is checked against time()
 *   unless verify_time_s is set, and PKCS#11 is RS_ENOTSUP.
 *
 * CONFIGURATION MACROS
 *   RESEAU_TLS_IMPLEMENTATION  emit the implementation in this translation
 *                              unit (needs reseau.h's declarations only; it
 *                              uses reseau's public API).
 */
#ifndef RESEAU_H
#error "reseau_tls.h: include reseau.h before reseau_tls.h"
#endif

#ifndef RESEAU_TLS_H
#define RESEAU_TLS_H

#ifdef __cplusplus
extern "C" {
#endif

#include "tls/engine.h"
#include "tls/tls.h"
#include "tls/pkcs11.h"

#ifdef __cplusplus
}
#endif

#endif /* RESEAU_TLS_H */

#if defined(RESEAU_TLS_IMPLEMENTATION) && !defined(RESEAU_TLS_IMPLEMENTATION_DONE)
#define RESEAU_TLS_IMPLEMENTATION_DONE

#include <bearssl.h>
#if !RESEAU_OS_NONE
#include <dirent.h> /* ca_dir and the system store's directories (mingw has it too) */
#endif
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#if RESEAU_OS_WINDOWS
/* As in reseau.h's implementation: winsock2.h before windows.h, lean. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <windows.h>
#include <bcrypt.h>   /* BCryptGenRandom: link -lbcrypt */
#include <wincrypt.h> /* the ROOT certificate store: link -lcrypt32 */
#include <io.h>     /* _access */
#elif !RESEAU_OS_NONE
#include <sys/random.h>
#include <unistd.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#include "tls/errors.c"
#include "tls/credentials.c"
#include "tls/context.c"
#include "tls/private_key.c"
#include "tls/verify.c"
#include "tls/engine_bearssl.c"
#include "tls/handler.c"
#include "tls/installer.c"
#include "tls/pkcs11.c"

#ifdef __cplusplus
}
#endif

#endif /* RESEAU_TLS_IMPLEMENTATION */
