/*
 * cert_load: reads certificates (and keys) from files in any common form -- PEM bundles, DER
 * (.cer/.crt), PKCS#12 (.pfx/.p12, with a password) -- and says precisely what is wrong with a
 * file that holds none.
 */
#ifndef GATEHOUSE_TLS_CERT_LOAD_H
#define GATEHOUSE_TLS_CERT_LOAD_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Largest certificate/key file we read: far above any real bundle, small enough to refuse junk. */
#define CERT_FILE_MAX_BYTES (4 * 1024 * 1024)

/*
 * Loads every certificate in <path>. <password> is used for PKCS#12 (NULL = empty password).
 * On success returns 0 and a non-empty stack in *out (caller frees with
 * sk_X509_pop_free(*out, X509_free)). On failure returns -1 and writes one sentence to err
 * (e.g. "contains a private key, not a certificate").
 */
int cert_load_file(const char *path, const char *password, STACK_OF(X509) * *out, char *err,
                   size_t errlen);

/* Same, from memory. Used by the fuzz target too. */
int cert_load_mem(const unsigned char *data, size_t len, const char *password,
                  STACK_OF(X509) * *out, char *err, size_t errlen);

/*
 * Loads a private key (PEM or DER; or the key inside a PKCS#12 file). Returns NULL and an error
 * sentence on failure. The key's bytes are never echoed into messages.
 */
EVP_PKEY *cert_load_key_file(const char *path, const char *password, char *err, size_t errlen);

/* Reads a password file: the first line, without its line ending. NULL + err on failure. */
char *cert_read_password_file(const char *path, char *err, size_t errlen);

#endif
