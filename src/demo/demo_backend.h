/*
 * demo_backend: small in-process HTTPS servers for `gatehouse demo`, each answering every
 * request with "hello from <name>". A backend may serve a different certificate when the client
 * sends a given SNI -- the load-balancer default-certificate situation of the seeds.
 */
#ifndef GATEHOUSE_DEMO_DEMO_BACKEND_H
#define GATEHOUSE_DEMO_DEMO_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct demo_backends;

struct demo_backend_spec {
    const char *name;
    X509 *cert;             /* served by default */
    STACK_OF(X509) * chain; /* sent after it (may be empty: a leaf-only backend) */
    EVP_PKEY *key;
    const char *sni_name; /* optional: this SNI gets sni_cert instead */
    X509 *sni_cert;
    STACK_OF(X509) * sni_chain;
    EVP_PKEY *sni_key;
};

/* Binds every backend on 127.0.0.1 (ephemeral ports) and serves them from one thread. */
struct demo_backends *demo_backends_start(const struct demo_backend_spec *specs, size_t n,
                                          char *err, size_t errlen);
uint16_t demo_backend_port(const struct demo_backends *b, size_t i);
void demo_backends_stop(struct demo_backends *b);

#endif
