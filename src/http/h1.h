/*
 * h1: strict, zero-copy HTTP/1.1 message-head parser and chunked-body decoder.
 *
 * The parser is stateless: a caller that has received more bytes simply calls it again from the
 * start of the buffer (heads are bounded, so re-parsing is cheap and keeps the code simple and
 * the error position exact). All slices point into the caller's buffer; nothing is copied or
 * allocated.
 *
 * Strictness is the point (request smuggling safety): anything ambiguous is refused, never
 * "repaired" -- bare CR, obs-fold, non-token header names, whitespace before the colon, both
 * Content-Length and Transfer-Encoding, differing duplicate Content-Length values, a
 * Transfer-Encoding other than a final "chunked", invalid chunk sizes, oversized lines.
 */
#ifndef GATEHOUSE_HTTP_H1_H
#define GATEHOUSE_HTTP_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h1_slice {
    const char *p;
    size_t len;
};

struct h1_header {
    struct h1_slice name;
    struct h1_slice value; /* leading and trailing OWS removed */
};

/* Return values of the head parsers. */
enum h1_status {
    H1_COMPLETE = 0,    /* a whole head was parsed; out->head_len bytes belong to it */
    H1_INCOMPLETE = -1, /* need more bytes (and none of the limits is exceeded yet) */
    H1_ERROR = -2,      /* malformed or over a limit: see out->error, out->error_pos */
};

enum h1_error {
    H1_ERR_NONE = 0,
    H1_ERR_METHOD,            /* method not a token */
    H1_ERR_TARGET,            /* request-target empty or has invalid bytes */
    H1_ERR_VERSION,           /* not HTTP/1.0 or HTTP/1.1 */
    H1_ERR_STATUS,            /* response status not three digits in 100..599, or bad reason */
    H1_ERR_BARE_CR,           /* CR not followed by LF */
    H1_ERR_BARE_LF,           /* LF line endings are refused, in requests and responses */
    H1_ERR_HEADER_NAME,       /* empty or non-token header name, or whitespace before ':' */
    H1_ERR_HEADER_VALUE,      /* control character in a header value */
    H1_ERR_OBS_FOLD,          /* line folding (continuation line) */
    H1_ERR_TOO_MANY_HEADERS,  /* over limits.max_headers */
    H1_ERR_HEAD_TOO_LARGE,    /* head (request line + headers) over limits.max_head */
    H1_ERR_TARGET_TOO_LONG,   /* request-target over limits.max_target */
    H1_ERR_CONTENT_LENGTH,    /* invalid Content-Length, or duplicates that differ */
    H1_ERR_TE_AND_CL,         /* both Transfer-Encoding and Content-Length */
    H1_ERR_TRANSFER_ENCODING, /* Transfer-Encoding whose final coding is not chunked, or unknown */
    H1_ERR_HOST,              /* HTTP/1.1 request without Host, several Host, or invalid Host */
};

enum h1_body {
    H1_BODY_NONE,    /* no body (requests without CL/TE; 1xx/204/304 or HEAD responses) */
    H1_BODY_LENGTH,  /* content_length bytes follow */
    H1_BODY_CHUNKED, /* chunked coding follows: feed it to h1_chunked_next() */
    H1_BODY_CLOSE,   /* response only: body runs until the server closes the connection */
};

struct h1_limits {
    size_t max_head;    /* bytes of request/status line + header lines + final CRLF */
    size_t max_target;  /* bytes of the request-target */
    size_t max_headers; /* header fields; must not exceed the caller's header array */
};

/* Defaults from ../shared/appgw-reference.md (32 KB URL, 32 KB headers). */
#define H1_DEFAULT_MAX_HEAD    (64 * 1024)
#define H1_DEFAULT_MAX_TARGET  (32 * 1024)
#define H1_DEFAULT_MAX_HEADERS 128

struct h1_request {
    struct h1_slice method;
    struct h1_slice target;
    int minor_version; /* 0 or 1 */
    struct h1_header *headers;
    size_t n_headers;
    size_t head_len;
    enum h1_body body;
    uint64_t content_length; /* when body == H1_BODY_LENGTH */
    struct h1_slice host;    /* value of the Host header (empty when absent) */
    bool keep_alive;         /* from version and Connection tokens */
    bool expect_continue;    /* Expect: 100-continue */
    bool upgrade;            /* Connection: upgrade with an Upgrade header */
    enum h1_error error;
    size_t error_pos; /* byte offset of the fault in the buffer (HEAD_TOO_LARGE: max_head) */
};

struct h1_response {
    int minor_version;
    int status;
    struct h1_slice reason;
    struct h1_header *headers;
    size_t n_headers;
    size_t head_len;
    enum h1_body body;
    uint64_t content_length;
    bool keep_alive;
    enum h1_error error;
    size_t error_pos;
};

void h1_limits_default(struct h1_limits *limits);

/*
 * Parse a request head from buf[0..len). <headers> has room for limits->max_headers entries.
 * Returns H1_COMPLETE, H1_INCOMPLETE or H1_ERROR (never reads past len, nor past max_head).
 * <limits> may be NULL for the defaults. Empty lines (CRLF) before the request-line are skipped
 * (RFC 9112 §2.2) and counted in head_len. The fields of <out> are meaningful on H1_COMPLETE;
 * error and error_pos on H1_ERROR. A request with both TE and CL is refused; `host` is the Host
 * header even when an absolute-form target carries its own authority (which then wins, RFC 9112
 * §3.2.2: routing must use the target's).
 */
int h1_parse_request(const char *buf, size_t len, const struct h1_limits *limits,
                     struct h1_header *headers, struct h1_request *out);

/*
 * Parse a response head. <request_was_head> and the status decide whether a body follows
 * (HEAD, 1xx, 204 and 304 have none). Transfer-Encoding overrides Content-Length (RFC 9112
 * §6.3): such a response is framed by its chunked coding, keep_alive is false, and a proxy must
 * drop the Content-Length before forwarding it. A final coding other than chunked gives
 * H1_BODY_CLOSE. The caller handles 101 and 2xx-to-CONNECT (the connection becomes a tunnel).
 */
int h1_parse_response(const char *buf, size_t len, const struct h1_limits *limits,
                      struct h1_header *headers, bool request_was_head, struct h1_response *out);

/* A human-readable name for an error, e.g. "both Content-Length and Transfer-Encoding". */
const char *h1_error_text(enum h1_error error);

/* Case-insensitive token comparison helpers over slices. */
bool h1_slice_eq(struct h1_slice s, const char *lit);
bool h1_slice_ieq(struct h1_slice s, const char *lit);
/* First header named <name> (case-insensitive), or NULL. */
const struct h1_header *h1_find_header(const struct h1_header *headers, size_t n, const char *name);

/*
 * Incremental chunked-body decoder. Zero-copy: each call consumes bytes from the input and may
 * return one span of body data that points into the input.
 */
struct h1_chunked {
    int state;
    uint64_t remaining;   /* bytes left in the current chunk */
    size_t line_len;      /* bytes of the current size/trailer line seen so far */
    size_t trailer_bytes; /* bytes of trailers seen so far */
    size_t max_line;      /* limit for one chunk-size or trailer line (default 4096) */
    size_t max_trailers;  /* limit for the whole trailer section (default 32 KiB) */
};

enum h1_chunk_status {
    H1_CHUNK_DATA = 1,      /* *data is a span of body bytes */
    H1_CHUNK_NEED_MORE = 0, /* all input consumed, nothing to return yet */
    H1_CHUNK_DONE = 2,      /* last chunk and trailers consumed; *consumed ends the body */
    H1_CHUNK_ERROR = -1,    /* invalid chunk size, missing CRLF, oversized line */
};

#define H1_CHUNKED_DEFAULT_MAX_LINE     4096
#define H1_CHUNKED_DEFAULT_MAX_TRAILERS (32 * 1024)

/* Starts a body; max_line and max_trailers get the defaults above (change them after). */
void h1_chunked_init(struct h1_chunked *st);

/*
 * Feed in[0..len). Sets *consumed to the number of input bytes used (always <= len). When it
 * returns H1_CHUNK_DATA, *data points inside <in> and ends at in + *consumed; call again with the
 * rest of the input. On H1_CHUNK_ERROR, *consumed is the offset of the offending byte and the
 * decoder stays in error. Chunk extensions are checked against RFC 9112 §7.1.1 (no whitespace
 * before ';') and skipped; trailer fields are checked like header fields and skipped.
 */
int h1_chunked_next(struct h1_chunked *st, const char *in, size_t len, size_t *consumed,
                    struct h1_slice *data);

#endif
