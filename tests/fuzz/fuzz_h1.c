/*
 * libFuzzer target for src/http/h1.c: the request parser, the response parser and the chunked
 * decoder all run over every input, and each checks the promises of h1.h rather than just
 * "does not crash":
 *
 *   - heads: results stay inside the buffer; as a function of the prefix length the outcome is
 *     "incomplete" up to one point and then one fixed answer (the same head length, or the same
 *     error at the same position) however many more bytes arrive: that is what makes stateless
 *     re-parsing correct, and what puts error_pos where the fault is;
 *   - chunked: consumed <= len, data spans inside the input and ending at consumed, and the body,
 *     the final status and where the body ends do not depend on how the input is split.
 *
 * Inputs run with the default limits and with small ones, so that the limit paths get fuzzed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_h1: invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Inputs up to this size get the quadratic checks (every prefix, every split). */
#define SMALL_INPUT 192

static struct h1_header headers[H1_DEFAULT_MAX_HEADERS];

static const struct h1_limits small_limits = {.max_head = 160, .max_target = 24, .max_headers = 6};

static void check_slice(struct h1_slice s, const char *buf, size_t len)
{
    CHECK(s.len == 0 || s.p != NULL);
    if (s.len > 0) {
        CHECK(s.p >= buf);
        CHECK(s.len <= len && (size_t)(s.p - buf) <= len - s.len);
    }
}

/* What must not change between two parses of prefixes that reached a final answer. */
struct head_outcome {
    int rc;
    size_t head_len;
    enum h1_error error;
    size_t error_pos;
    enum h1_body body;
    uint64_t content_length;
    size_t n_headers;
};

/* Parses buf[0..len) into an exact-size heap copy, so that a read past len is an ASan crash. */
static struct head_outcome parse_request(const char *src, size_t len,
                                         const struct h1_limits *limits, struct h1_request *r)
{
    char *buf = malloc(len);
    CHECK(buf != NULL || len == 0);
    if (len > 0)
        memcpy(buf, src, len);
    int rc = h1_parse_request(buf, len, limits, headers, r);

    struct head_outcome o = {rc, 0, r->error, r->error_pos, H1_BODY_NONE, 0, 0};
    CHECK(rc == H1_COMPLETE || rc == H1_INCOMPLETE || rc == H1_ERROR);
    if (rc == H1_COMPLETE) {
        CHECK(r->error == H1_ERR_NONE);
        CHECK(r->head_len > 0 && r->head_len <= len && r->head_len <= limits->max_head);
        CHECK(r->n_headers <= limits->max_headers);
        CHECK(r->headers == headers);
        CHECK(r->minor_version == 0 || r->minor_version == 1);
        check_slice(r->method, buf, r->head_len);
        check_slice(r->target, buf, r->head_len);
        check_slice(r->host, buf, r->head_len);
        CHECK(r->method.len > 0 && r->target.len > 0 && r->target.len <= limits->max_target);
        for (size_t i = 0; i < r->n_headers; i++) {
            check_slice(r->headers[i].name, buf, r->head_len);
            check_slice(r->headers[i].value, buf, r->head_len);
            CHECK(r->headers[i].name.len > 0);
        }
        CHECK(r->body == H1_BODY_NONE || r->body == H1_BODY_LENGTH || r->body == H1_BODY_CHUNKED);
        if (r->body != H1_BODY_LENGTH)
            CHECK(r->content_length == 0);
        CHECK(r->content_length <= (uint64_t)INT64_MAX);
        /* smuggling: never both framings, and a 1.1 request has exactly one Host */
        const struct h1_header *te = h1_find_header(r->headers, r->n_headers, "transfer-encoding");
        const struct h1_header *cl = h1_find_header(r->headers, r->n_headers, "content-length");
        CHECK(!(te && cl));
        CHECK((te != NULL) == (r->body == H1_BODY_CHUNKED));
        if (r->minor_version == 1)
            CHECK(h1_find_header(r->headers, r->n_headers, "host") != NULL);
        CHECK(!r->upgrade || r->minor_version == 1);
        o.head_len = r->head_len;
        o.body = r->body;
        o.content_length = r->content_length;
        o.n_headers = r->n_headers;
    } else if (rc == H1_INCOMPLETE) {
        CHECK(r->error == H1_ERR_NONE);
        CHECK(len < limits->max_head);
    } else {
        CHECK(r->error != H1_ERR_NONE);
        CHECK(h1_error_text(r->error) != NULL);
        if (r->error == H1_ERR_HEAD_TOO_LARGE)
            CHECK(r->error_pos == limits->max_head && len >= limits->max_head);
        else
            CHECK(r->error_pos < len);
    }
    free(buf);
    return o;
}

static struct head_outcome parse_response(const char *src, size_t len,
                                          const struct h1_limits *limits, bool was_head,
                                          struct h1_response *r)
{
    char *buf = malloc(len);
    CHECK(buf != NULL || len == 0);
    if (len > 0)
        memcpy(buf, src, len);
    int rc = h1_parse_response(buf, len, limits, headers, was_head, r);

    struct head_outcome o = {rc, 0, r->error, r->error_pos, H1_BODY_NONE, 0, 0};
    CHECK(rc == H1_COMPLETE || rc == H1_INCOMPLETE || rc == H1_ERROR);
    if (rc == H1_COMPLETE) {
        CHECK(r->error == H1_ERR_NONE);
        CHECK(r->head_len > 0 && r->head_len <= len && r->head_len <= limits->max_head);
        CHECK(r->n_headers <= limits->max_headers);
        CHECK(r->status >= 100 && r->status <= 599);
        check_slice(r->reason, buf, r->head_len);
        for (size_t i = 0; i < r->n_headers; i++) {
            check_slice(r->headers[i].name, buf, r->head_len);
            check_slice(r->headers[i].value, buf, r->head_len);
        }
        if (was_head || r->status < 200 || r->status == 204 || r->status == 304)
            CHECK(r->body == H1_BODY_NONE);
        if (r->body == H1_BODY_CLOSE)
            CHECK(!r->keep_alive);
        if (r->body != H1_BODY_LENGTH)
            CHECK(r->content_length == 0);
        o.head_len = r->head_len;
        o.body = r->body;
        o.content_length = r->content_length;
        o.n_headers = r->n_headers;
    } else if (rc == H1_INCOMPLETE) {
        CHECK(r->error == H1_ERR_NONE);
        CHECK(len < limits->max_head);
    } else {
        CHECK(r->error != H1_ERR_NONE);
        if (r->error == H1_ERR_HEAD_TOO_LARGE)
            CHECK(r->error_pos == limits->max_head && len >= limits->max_head);
        else
            CHECK(r->error_pos < len);
    }
    free(buf);
    return o;
}

static bool same_outcome(const struct head_outcome *a, const struct head_outcome *b)
{
    return a->rc == b->rc && a->head_len == b->head_len && a->error == b->error &&
           a->error_pos == b->error_pos && a->body == b->body &&
           a->content_length == b->content_length && a->n_headers == b->n_headers;
}

/*
 * The full answer <whole> against prefixes: incomplete below the deciding length, the same
 * answer from there on. Every prefix for small inputs, a few chosen ones otherwise.
 */
static void check_prefixes_request(const char *buf, size_t len, const struct h1_limits *limits,
                                   const struct head_outcome *whole)
{
    struct h1_request r;
    if (whole->rc == H1_INCOMPLETE) {
        if (len > 0)
            CHECK(parse_request(buf, len - 1, limits, &r).rc == H1_INCOMPLETE);
        return;
    }
    /* the deciding length: a complete head decides at its end; an error after its position */
    size_t decided = whole->rc == H1_COMPLETE ? whole->head_len : whole->error_pos + 1;
    if (whole->error == H1_ERR_HEAD_TOO_LARGE)
        decided = whole->error_pos;
    if (len <= SMALL_INPUT) {
        bool seen_final = false;
        for (size_t k = 0; k <= len; k++) {
            struct head_outcome o = parse_request(buf, k, limits, &r);
            if (o.rc == H1_INCOMPLETE) {
                CHECK(!seen_final);
                continue;
            }
            CHECK(same_outcome(&o, whole));
            CHECK(k >= decided);
            seen_final = true;
        }
    } else {
        if (decided > 0)
            CHECK(parse_request(buf, decided - 1, limits, &r).rc == H1_INCOMPLETE);
        if (whole->rc == H1_COMPLETE) {
            struct head_outcome o = parse_request(buf, whole->head_len, limits, &r);
            CHECK(same_outcome(&o, whole));
        }
    }
}

static void check_prefixes_response(const char *buf, size_t len, const struct h1_limits *limits,
                                    bool was_head, const struct head_outcome *whole)
{
    struct h1_response r;
    if (whole->rc == H1_INCOMPLETE)
        return;
    size_t decided = whole->rc == H1_COMPLETE ? whole->head_len : whole->error_pos + 1;
    if (whole->error == H1_ERR_HEAD_TOO_LARGE)
        decided = whole->error_pos;
    if (len <= SMALL_INPUT) {
        bool seen_final = false;
        for (size_t k = 0; k <= len; k++) {
            struct head_outcome o = parse_response(buf, k, limits, was_head, &r);
            if (o.rc == H1_INCOMPLETE) {
                CHECK(!seen_final);
                continue;
            }
            CHECK(same_outcome(&o, whole));
            CHECK(k >= decided);
            seen_final = true;
        }
    } else if (decided > 0) {
        CHECK(parse_response(buf, decided - 1, limits, was_head, &r).rc == H1_INCOMPLETE);
    }
}

/* ---- chunked ---- */

struct decoded {
    int status; /* DONE, ERROR, or NEED_MORE when the input ran out */
    size_t end; /* where DONE or ERROR happened; len otherwise */
    size_t body_len;
};

/*
 * Decodes in[0..len) delivered in pieces ending at cuts[0] < cuts[1] < ... (then len); the body
 * goes to <body> (room for len bytes: a body is never longer than its encoding).
 */
static void decode(const char *in, size_t len, const size_t *cuts, size_t n_cuts,
                   const struct h1_chunked *proto, char *body, struct decoded *out)
{
    struct h1_chunked st = *proto;
    size_t off = 0;
    out->body_len = 0;
    for (size_t k = 0; k <= n_cuts; k++) {
        size_t piece_end = k < n_cuts ? cuts[k] : len;
        CHECK(piece_end >= off && piece_end <= len);
        while (off < piece_end) {
            size_t avail = piece_end - off;
            char *piece = malloc(avail);
            CHECK(piece != NULL);
            memcpy(piece, in + off, avail);
            size_t used = SIZE_MAX;
            struct h1_slice data = {NULL, 0};
            int rc = h1_chunked_next(&st, piece, avail, &used, &data);
            CHECK(used <= avail);
            if (rc == H1_CHUNK_DATA) {
                CHECK(data.len > 0 && data.len <= used);
                CHECK(data.p == piece + (used - data.len));
                CHECK(out->body_len + data.len <= len);
                memcpy(body + out->body_len, data.p, data.len);
                out->body_len += data.len;
            }
            free(piece);
            if (rc == H1_CHUNK_DATA) {
                off += used;
            } else if (rc == H1_CHUNK_NEED_MORE) {
                CHECK(used == avail);
                off += used;
            } else {
                CHECK(rc == H1_CHUNK_DONE || rc == H1_CHUNK_ERROR);
                out->status = rc;
                out->end = off + used;
                /* final states stay final and consume nothing */
                CHECK(h1_chunked_next(&st, in, len, &used, &data) == rc && used == 0);
                return;
            }
        }
    }
    out->status = H1_CHUNK_NEED_MORE;
    out->end = len;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64: deterministic per input, so that a crash reproduces */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_chunked(const char *in, size_t len, const struct h1_chunked *proto)
{
    char *whole_body = malloc(len + 1);
    char *body = malloc(len + 1);
    size_t *cuts = malloc((len + 1) * sizeof(*cuts));
    CHECK(whole_body && body && cuts);

    struct decoded whole, got;
    decode(in, len, NULL, 0, proto, whole_body, &whole);
    CHECK(whole.end <= len);
    if (whole.status == H1_CHUNK_DONE)
        CHECK(whole.end >= 5); /* "0\r\n\r\n" at least */

#define SAME_AS_WHOLE()                                                                            \
    do {                                                                                           \
        CHECK(got.status == whole.status && got.end == whole.end);                                 \
        CHECK(got.body_len == whole.body_len);                                                     \
        CHECK(memcmp(body, whole_body, whole.body_len) == 0);                                      \
    } while (0)

    /* byte by byte */
    size_t n = 0;
    for (size_t i = 1; i < len; i++)
        cuts[n++] = i;
    decode(in, len, cuts, n, proto, body, &got);
    SAME_AS_WHOLE();

    /* every single split point */
    if (len <= SMALL_INPUT) {
        for (size_t cut = 1; cut < len; cut++) {
            decode(in, len, &cut, 1, proto, body, &got);
            SAME_AS_WHOLE();
        }
    }

    /* random splits */
    uint64_t seed = 0x9e3779b97f4a7c15u ^ len;
    for (size_t i = 0; i < len && i < 16; i++)
        seed = seed * 31 + (unsigned char)in[i];
    if (seed == 0)
        seed = 1;
    for (int round = 0; round < 8; round++) {
        n = 0;
        unsigned every = 1 + (unsigned)(rng_next(&seed) % 16);
        for (size_t i = 1; i < len; i++) {
            if (rng_next(&seed) % every == 0)
                cuts[n++] = i;
        }
        decode(in, len, cuts, n, proto, body, &got);
        SAME_AS_WHOLE();
    }
#undef SAME_AS_WHOLE

    free(cuts);
    free(body);
    free(whole_body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct h1_limits defaults;
    h1_limits_default(&defaults);
    struct h1_chunked chunked_defaults, chunked_small;
    h1_chunked_init(&chunked_defaults);
    h1_chunked_init(&chunked_small);
    chunked_small.max_line = 12;
    chunked_small.max_trailers = 48;

    const struct h1_limits *profiles[] = {&defaults, &small_limits};
    for (size_t i = 0; i < 2; i++) {
        struct h1_request req;
        struct head_outcome o = parse_request(buf, size, profiles[i], &req);
        check_prefixes_request(buf, size, profiles[i], &o);
        /* the body the parser announced, fed to the decoder it names */
        if (o.rc == H1_COMPLETE && o.body == H1_BODY_CHUNKED && i == 0)
            check_chunked(buf + o.head_len, size - o.head_len, &chunked_defaults);

        for (int was_head = 0; was_head < 2; was_head++) {
            struct h1_response resp;
            o = parse_response(buf, size, profiles[i], was_head, &resp);
            check_prefixes_response(buf, size, profiles[i], was_head, &o);
            if (o.rc == H1_COMPLETE && o.body == H1_BODY_CHUNKED && i == 0)
                check_chunked(buf + o.head_len, size - o.head_len, &chunked_small);
        }
    }

    check_chunked(buf, size, &chunked_defaults);
    check_chunked(buf, size, &chunked_small);
    return 0;
}
