#include "tls/trust.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "tls/cert_load.h"

const char *trust_mode_name(enum trust_mode mode)
{
    switch (mode) {
    case TRUST_WELL_KNOWN:
        return "well-known-ca";
    case TRUST_ROOTS:
        return "trusted-root";
    case TRUST_ALLOWLIST:
        return "auth-cert";
    }
    return "unknown";
}

void trust_policy_init(struct trust_policy *policy, enum trust_mode mode)
{
    memset(policy, 0, sizeof *policy);
    policy->mode = mode;
}

void trust_policy_clear(struct trust_policy *policy)
{
    for (size_t i = 0; i < policy->n_anchors; i++) {
        cert_info_clear(&policy->anchors[i].info);
        free(policy->anchors[i].source);
    }
    free(policy->anchors);
    X509_STORE_free(policy->system);
    memset(policy, 0, sizeof *policy);
}

int trust_policy_add_cert(struct trust_policy *policy, X509 *x, const char *source)
{
    struct trust_anchor *grown =
            realloc(policy->anchors, (policy->n_anchors + 1) * sizeof *policy->anchors);
    if (!grown)
        return -1;
    policy->anchors = grown;
    struct trust_anchor *a = &policy->anchors[policy->n_anchors];
    if (cert_info_init(&a->info, x) != 0) {
        cert_info_clear(&a->info);
        return -1;
    }
    a->source = strdup(source ? source : "");
    if (!a->source) {
        cert_info_clear(&a->info);
        return -1;
    }
    policy->n_anchors++;
    return 0;
}

int trust_policy_add_file(struct trust_policy *policy, const char *path, const char *password,
                          char *err, size_t errlen)
{
    STACK_OF(X509) * certs;
    if (cert_load_file(path, password, &certs, err, errlen) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < sk_X509_num(certs) && rc == 0; i++) {
        if (trust_policy_add_cert(policy, sk_X509_value(certs, i), path) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

int trust_policy_load_system(struct trust_policy *policy)
{
    if (policy->system)
        return 0;
    if (policy->system_failed)
        return -1;
    X509_STORE *store = X509_STORE_new();
    /* Honours SSL_CERT_FILE / SSL_CERT_DIR; the directory is looked up by subject hash, so
     * only the certificates a chain actually names are ever parsed. */
    if (!store || X509_STORE_set_default_paths(store) != 1) {
        X509_STORE_free(store);
        policy->system_failed = true;
        ERR_clear_error();
        return -1;
    }
    policy->system = store;
    return 0;
}

static bool system_find_issuer(X509_STORE *store, X509 *x, X509 **issuer)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!ctx)
        return false;
    bool found = false;
    if (X509_STORE_CTX_init(ctx, store, NULL, NULL) == 1) {
        STACK_OF(X509) *cands = X509_STORE_CTX_get1_certs(ctx, X509_get_issuer_name(x));
        for (int i = 0; cands && i < sk_X509_num(cands) && !found; i++) {
            X509 *c = sk_X509_value(cands, i);
            if (cert_issued_by(x, c) && X509_up_ref(c)) {
                *issuer = c;
                found = true;
            }
        }
        sk_X509_pop_free(cands, X509_free);
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return found;
}

bool trust_find_issuer(const struct trust_policy *policy, X509 *x, X509 **issuer, int *anchor_index)
{
    *issuer = NULL;
    *anchor_index = -1;
    for (size_t i = 0; i < policy->n_anchors; i++) {
        X509 *a = policy->anchors[i].info.x509;
        if (cert_issued_by(x, a) && X509_up_ref(a)) {
            *issuer = a;
            *anchor_index = (int)i;
            return true;
        }
    }
    if (policy->mode == TRUST_WELL_KNOWN && policy->system)
        return system_find_issuer(policy->system, x, issuer);
    return false;
}
