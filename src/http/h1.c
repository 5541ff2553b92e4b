/*
 * h1: strict HTTP/1.1 head parser and chunked-body decoder (the contract is in h1.h).
 *
 * Head parsing is one forward walk over buf[0..min(len, max_head)): start line, then field lines,
 * each field checked for framing meaning (Content-Length, Transfer-Encoding, Host, Connection...)
 * as soon as its CRLF is seen, so that a fault is reported at the first byte that proves it and
 * never later than necessary. Running out of bytes inside that window means "incomplete";
 * running into the max_head edge means "too large", because no longer head can be valid.
 *
 * The chunked decoder is a byte-at-a-time state machine for the framing (size lines, CRLFs,
 * trailers) and hands out chunk data as spans of the caller's input, so body bytes are never
 * looked at one by one.
 */
#include "http/h1.h"

#include <string.h>

/* Content-Length and chunk sizes must fit in a signed 64-bit offset (off_t, int64 counters). */
#define H1_MAX_LENGTH ((uint64_t)INT64_MAX)

/* ---- character classes (RFC 9110 §5.6.2, RFC 3986 §2) ---- */

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_tchar(unsigned char c)
{
    if (is_alpha(c) || is_digit(c))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

static bool is_vchar(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* field-content bytes other than OWS: VCHAR and obs-text (RFC 9110 §5.5). */
static bool is_field_vchar(unsigned char c)
{
    return c >= 0x21 && c != 0x7f;
}

static bool is_unreserved(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_sub_delim(unsigned char c)
{
    return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

static unsigned char to_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* ---- small public helpers ---- */

void h1_limits_default(struct h1_limits *limits)
{
    limits->max_head = H1_DEFAULT_MAX_HEAD;
    limits->max_target = H1_DEFAULT_MAX_TARGET;
    limits->max_headers = H1_DEFAULT_MAX_HEADERS;
}

bool h1_slice_eq(struct h1_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

bool h1_slice_ieq(struct h1_slice s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (to_lower((unsigned char)s.p[i]) != to_lower((unsigned char)lit[i]))
            return false;
    }
    return true;
}

const struct h1_header *h1_find_header(const struct h1_header *headers, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (h1_slice_ieq(headers[i].name, name))
            return &headers[i];
    }
    return NULL;
}

const char *h1_error_text(enum h1_error error)
{
    switch (error) {
    case H1_ERR_NONE:
        return "no error";
    case H1_ERR_METHOD:
        return "invalid method";
    case H1_ERR_TARGET:
        return "invalid request-target";
    case H1_ERR_VERSION:
        return "invalid or unsupported HTTP version";
    case H1_ERR_STATUS:
        return "invalid status line";
    case H1_ERR_BARE_CR:
        return "CR not followed by LF";
    case H1_ERR_BARE_LF:
        return "LF without CR";
    case H1_ERR_HEADER_NAME:
        return "invalid header field name";
    case H1_ERR_HEADER_VALUE:
        return "control character in header field value";
    case H1_ERR_OBS_FOLD:
        return "obsolete line folding";
    case H1_ERR_TOO_MANY_HEADERS:
        return "too many header fields";
    case H1_ERR_HEAD_TOO_LARGE:
        return "message head too large";
    case H1_ERR_TARGET_TOO_LONG:
        return "request-target too long";
    case H1_ERR_CONTENT_LENGTH:
        return "invalid Content-Length";
    case H1_ERR_TE_AND_CL:
        return "both Content-Length and Transfer-Encoding";
    case H1_ERR_TRANSFER_ENCODING:
        return "unsupported Transfer-Encoding";
    case H1_ERR_HOST:
        return "missing, duplicate or invalid Host";
    }
    return "unknown error";
}

/* ---- head parsing ---- */

enum step {
    STEP_OK,   /* this part is complete and valid */
    STEP_MORE, /* ran out of bytes inside the window */
    STEP_FAIL, /* h->error and h->error_pos are set */
};

/* Everything the walk learns; copied into the caller's request or response at the end. */
struct head {
    const char *buf;
    size_t len; /* bytes the caller has */
    size_t end; /* bytes we may look at: min(len, max_head) */
    size_t pos; /* start of the next line once a line is done */
    bool request;
    int minor;
    const struct h1_limits *limits;
    struct h1_header *headers;
    size_t n_headers;

    bool have_cl;
    uint64_t cl;
    bool have_te;
    unsigned te_chunked;  /* "chunked" codings seen over all Transfer-Encoding lines */
    bool te_last_chunked; /* the last coding seen so far is "chunked" */
    unsigned host_count;
    struct h1_slice host;
    bool conn_close;
    bool conn_keep_alive;
    bool conn_upgrade;
    bool have_upgrade;
    bool expect_continue;

    enum h1_error error;
    size_t error_pos;
};

static enum step fail(struct head *h, enum h1_error error, size_t pos)
{
    h->error = error;
    h->error_pos = pos;
    return STEP_FAIL;
}

/* buf[pos] is CR: the line ends there only if LF follows. */
static enum step line_end(struct head *h, size_t pos)
{
    if (pos + 1 >= h->end)
        return STEP_MORE;
    if (h->buf[pos + 1] != '\n')
        return fail(h, H1_ERR_BARE_CR, pos);
    return STEP_OK;
}

/* "HTTP/1.0" or "HTTP/1.1" at <pos>, byte for byte (the name is case-sensitive, RFC 9112 §2.3). */
static enum step parse_version(struct head *h, size_t pos)
{
    static const char proto[] = "HTTP/1.";
    for (size_t i = 0; i < sizeof(proto) - 1; i++) {
        if (pos + i >= h->end)
            return STEP_MORE;
        if (h->buf[pos + i] != proto[i])
            return fail(h, H1_ERR_VERSION, pos + i);
    }
    pos += sizeof(proto) - 1;
    if (pos >= h->end)
        return STEP_MORE;
    if (h->buf[pos] != '0' && h->buf[pos] != '1')
        return fail(h, H1_ERR_VERSION, pos);
    h->minor = h->buf[pos] - '0';
    return STEP_OK;
}

/*
 * uri-host [ ":" port ] (RFC 3986 §3.2.2-3.2.3) in s[0..n), host non-empty, port at most 65535
 * and required when <need_port>. Returns the offset of the first bad byte (n when something is
 * missing at the end), or SIZE_MAX when valid.
 */
static size_t authority_fault(const char *s, size_t n, bool need_port)
{
    size_t i = 0;
    if (n > 0 && s[0] == '[') {
        /* IP-literal: the characters of IPv6address and IPvFuture; the resolver judges the rest */
        for (i = 1; i < n && s[i] != ']'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!is_unreserved(c) && !is_sub_delim(c) && c != ':')
                return i;
        }
        if (i == n || i == 1)
            return i;
        i++;
    } else {
        for (; i < n && s[i] != ':'; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '%') {
                if (i + 2 >= n || hex_value((unsigned char)s[i + 1]) < 0 ||
                    hex_value((unsigned char)s[i + 2]) < 0)
                    return i;
                i += 2;
            } else if (!is_unreserved(c) && !is_sub_delim(c)) {
                return i;
            }
        }
        if (i == 0)
            return 0;
    }
    if (i == n)
        return need_port ? n : SIZE_MAX;
    if (s[i] != ':')
        return i;
    i++;
    size_t digits = 0;
    unsigned long port = 0;
    for (; i < n; i++, digits++) {
        if (!is_digit((unsigned char)s[i]))
            return i;
        port = port * 10 + (unsigned long)(s[i] - '0');
        if (port > 65535)
            return i;
    }
    if (need_port && digits == 0)
        return n;
    return SIZE_MAX;
}

/*
 * The request-target forms of RFC 9112 §3.2: authority-form for CONNECT and only there,
 * asterisk-form for OPTIONS only, otherwise origin-form or absolute-form. An http(s) absolute
 * URI must carry a valid authority without userinfo (RFC 9110 §4.2.1, §4.2.4): it overrides Host
 * for routing, so it gets the same scrutiny as Host.
 */
static enum step check_target(struct head *h, struct h1_slice method, size_t start, size_t end)
{
    const char *t = h->buf + start;
    size_t n = end - start;

    if (h1_slice_eq(method, "CONNECT")) {
        size_t bad = authority_fault(t, n, true);
        return bad == SIZE_MAX ? STEP_OK : fail(h, H1_ERR_TARGET, start + bad);
    }
    if (t[0] == '/')
        return STEP_OK;
    if (n == 1 && t[0] == '*')
        return h1_slice_eq(method, "OPTIONS") ? STEP_OK : fail(h, H1_ERR_TARGET, start);

    /* absolute-form: scheme ":" hier-part */
    if (!is_alpha((unsigned char)t[0]))
        return fail(h, H1_ERR_TARGET, start);
    size_t i = 1;
    for (; i < n && t[i] != ':'; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return fail(h, H1_ERR_TARGET, start + i);
    }
    if (i == n)
        return fail(h, H1_ERR_TARGET, end);
    struct h1_slice scheme = {t, i};
    if (!h1_slice_ieq(scheme, "http") && !h1_slice_ieq(scheme, "https"))
        return STEP_OK;
    i++;
    if (n - i < 2 || t[i] != '/' || t[i + 1] != '/')
        return fail(h, H1_ERR_TARGET, start + i);
    i += 2;
    size_t a = i;
    while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    size_t bad = authority_fault(t + a, i - a, false);
    return bad == SIZE_MAX ? STEP_OK : fail(h, H1_ERR_TARGET, start + a + bad);
}

static enum step parse_request_line(struct head *h, struct h1_request *out)
{
    const char *buf = h->buf;
    size_t p = 0;

    /* RFC 9112 §2.2: a server SHOULD ignore empty lines before the request-line (some clients
     * send a CRLF after a body). They count towards max_head, so this cannot spin forever. */
    while (p < h->end && (buf[p] == '\r' || buf[p] == '\n')) {
        if (buf[p] == '\n')
            return fail(h, H1_ERR_BARE_LF, p);
        enum step s = line_end(h, p);
        if (s != STEP_OK)
            return s;
        p += 2;
    }

    size_t m = p;
    while (p < h->end && is_tchar((unsigned char)buf[p]))
        p++;
    if (p >= h->end)
        return STEP_MORE;
    if (buf[p] != ' ' || p == m)
        return fail(h, H1_ERR_METHOD, p);
    out->method = (struct h1_slice){buf + m, p - m};
    p++;

    size_t t = p;
    for (;; p++) {
        if (p >= h->end)
            return STEP_MORE;
        unsigned char c = (unsigned char)buf[p];
        if (c == ' ')
            break;
        if (p - t >= h->limits->max_target)
            return fail(h, H1_ERR_TARGET_TOO_LONG, p);
        if (c == '\r' || c == '\n')
            return fail(h, H1_ERR_VERSION, p); /* "GET /" alone: HTTP/0.9, not spoken here */
        if (!is_vchar(c))
            return fail(h, H1_ERR_TARGET, p);
    }
    if (p == t)
        return fail(h, H1_ERR_TARGET, p);
    out->target = (struct h1_slice){buf + t, p - t};
    enum step s = check_target(h, out->method, t, p);
    if (s != STEP_OK)
        return s;
    p++;

    s = parse_version(h, p);
    if (s != STEP_OK)
        return s;
    p += 8;
    if (p >= h->end)
        return STEP_MORE;
    if (buf[p] == '\n')
        return fail(h, H1_ERR_BARE_LF, p);
    if (buf[p] != '\r')
        return fail(h, H1_ERR_VERSION, p);
    s = line_end(h, p);
    if (s != STEP_OK)
        return s;
    h->pos = p + 2;
    return STEP_OK;
}

static enum step parse_status_line(struct head *h, struct h1_response *out)
{
    const char *buf = h->buf;
    enum step s = parse_version(h, 0);
    if (s != STEP_OK)
        return s;
    size_t p = 8;
    if (p >= h->end)
        return STEP_MORE;
    if (buf[p] != ' ')
        return fail(h, H1_ERR_VERSION, p);
    p++;

    int status = 0;
    for (size_t i = 0; i < 3; i++, p++) {
        if (p >= h->end)
            return STEP_MORE;
        if (!is_digit((unsigned char)buf[p]))
            return fail(h, H1_ERR_STATUS, p);
        status = status * 10 + (buf[p] - '0');
    }
    /* RFC 9110 §15: values outside 100..599 are invalid, and we could not frame them. */
    if (status < 100 || status > 599)
        return fail(h, H1_ERR_STATUS, p - 3);
    out->status = status;

    /* The reason phrase is optional, and so (in practice) is the SP before an empty one. */
    if (p >= h->end)
        return STEP_MORE;
    size_t r = p;
    if (buf[p] == ' ') {
        r = ++p;
        for (;; p++) {
            if (p >= h->end)
                return STEP_MORE;
            unsigned char c = (unsigned char)buf[p];
            if (c == '\r' || c == '\n')
                break;
            if (c != '\t' && c != ' ' && !is_field_vchar(c))
                return fail(h, H1_ERR_STATUS, p);
        }
    }
    if (buf[p] == '\n')
        return fail(h, H1_ERR_BARE_LF, p);
    if (buf[p] != '\r')
        return fail(h, H1_ERR_STATUS, p);
    s = line_end(h, p);
    if (s != STEP_OK)
        return s;
    out->reason = (struct h1_slice){buf + r, p - r};
    h->pos = p + 2;
    return STEP_OK;
}

/*
 * Content-Length = 1*DIGIT; a list of identical values ("5, 5", what a comma-joining
 * intermediary makes of a duplicated field) is accepted as one value (RFC 9110 §8.6).
 */
static enum step note_content_length(struct head *h, const struct h1_header *f, size_t name_pos,
                                     size_t value_pos)
{
    const char *s = f->value.p;
    size_t n = f->value.len;
    size_t i = 0;
    bool first = true;
    uint64_t value = 0;

    for (;;) {
        size_t start = i;
        uint64_t x = 0;
        while (i < n && is_digit((unsigned char)s[i])) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (x > (H1_MAX_LENGTH - d) / 10)
                return fail(h, H1_ERR_CONTENT_LENGTH, value_pos + i);
            x = x * 10 + d;
            i++;
        }
        if (i == start)
            return fail(h, H1_ERR_CONTENT_LENGTH, value_pos + i);
        if (!first && x != value)
            return fail(h, H1_ERR_CONTENT_LENGTH, value_pos + start);
        value = x;
        first = false;
        if (i == n)
            break;
        while (i < n && is_ows((unsigned char)s[i]))
            i++;
        if (i == n || s[i] != ',')
            return fail(h, H1_ERR_CONTENT_LENGTH, value_pos + i);
        i++;
        while (i < n && is_ows((unsigned char)s[i]))
            i++;
    }

    if (h->have_cl && h->cl != value)
        return fail(h, H1_ERR_CONTENT_LENGTH, value_pos);
    if (h->request && h->have_te)
        return fail(h, H1_ERR_TE_AND_CL, name_pos);
    h->have_cl = true;
    h->cl = value;
    return STEP_OK;
}

/*
 * Transfer-Encoding: a list of codings, combined over all its field lines. Requests may only
 * say "chunked", once (we decode nothing else, and a coding we pass along unread is a framing we
 * cannot check); responses may carry other codings, and only a final "chunked" frames the body
 * (RFC 9112 §6.3). Parameters are refused: chunked takes none and nobody sends them.
 */
static enum step note_transfer_encoding(struct head *h, const struct h1_header *f, size_t name_pos,
                                        size_t value_pos)
{
    /* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing. */
    if (h->minor == 0)
        return fail(h, H1_ERR_TRANSFER_ENCODING, name_pos);
    if (h->request && h->have_cl)
        return fail(h, H1_ERR_TE_AND_CL, name_pos);

    const char *s = f->value.p;
    size_t n = f->value.len;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < n && is_tchar((unsigned char)s[i]))
            i++;
        if (i == start)
            return fail(h, H1_ERR_TRANSFER_ENCODING, value_pos + i);
        struct h1_slice coding = {s + start, i - start};
        bool chunked = h1_slice_ieq(coding, "chunked");
        if (chunked && h->te_chunked > 0)
            return fail(h, H1_ERR_TRANSFER_ENCODING, value_pos + start);
        if (!chunked && h->request)
            return fail(h, H1_ERR_TRANSFER_ENCODING, value_pos + start);
        h->te_chunked += chunked;
        h->te_last_chunked = chunked;
        if (i == n)
            break;
        while (i < n && is_ows((unsigned char)s[i]))
            i++;
        if (i == n || s[i] != ',')
            return fail(h, H1_ERR_TRANSFER_ENCODING, value_pos + i);
        i++;
        while (i < n && is_ows((unsigned char)s[i]))
            i++;
    }
    h->have_te = true;
    return STEP_OK;
}

/* RFC 9112 §3.2: exactly one Host, whose value is empty or uri-host [ ":" port ]. */
static enum step note_host(struct head *h, const struct h1_header *f, size_t name_pos,
                           size_t value_pos)
{
    if (++h->host_count > 1)
        return fail(h, H1_ERR_HOST, name_pos);
    if (f->value.len > 0) {
        size_t bad = authority_fault(f->value.p, f->value.len, false);
        if (bad != SIZE_MAX)
            return fail(h, H1_ERR_HOST, value_pos + bad);
    }
    h->host = f->value;
    return STEP_OK;
}

/*
 * Calls <fn> on each element of a comma-separated list, OWS trimmed, empty elements skipped
 * (RFC 9110 §5.6.1: recipients accept empty elements). For fields that are not framing.
 */
static void each_list_element(struct h1_slice v, void (*fn)(struct head *, struct h1_slice),
                              struct head *h)
{
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (is_ows((unsigned char)v.p[i]) || v.p[i] == ','))
            i++;
        size_t start = i;
        while (i < v.len && v.p[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows((unsigned char)v.p[end - 1]))
            end--;
        if (end > start)
            fn(h, (struct h1_slice){v.p + start, end - start});
    }
}

static void connection_option(struct head *h, struct h1_slice option)
{
    if (h1_slice_ieq(option, "close"))
        h->conn_close = true;
    else if (h1_slice_ieq(option, "keep-alive"))
        h->conn_keep_alive = true;
    else if (h1_slice_ieq(option, "upgrade"))
        h->conn_upgrade = true;
}

static void expectation(struct head *h, struct h1_slice e)
{
    if (h1_slice_ieq(e, "100-continue"))
        h->expect_continue = true;
}

/* A complete field line: record what it says about framing and the connection. */
static enum step note_field(struct head *h, const struct h1_header *f, size_t name_pos,
                            size_t value_pos)
{
    if (h1_slice_ieq(f->name, "content-length"))
        return note_content_length(h, f, name_pos, value_pos);
    if (h1_slice_ieq(f->name, "transfer-encoding"))
        return note_transfer_encoding(h, f, name_pos, value_pos);
    if (h->request && h1_slice_ieq(f->name, "host"))
        return note_host(h, f, name_pos, value_pos);
    if (h1_slice_ieq(f->name, "connection"))
        each_list_element(f->value, connection_option, h);
    else if (h1_slice_ieq(f->name, "upgrade"))
        h->have_upgrade = true;
    else if (h->request && h1_slice_ieq(f->name, "expect"))
        each_list_element(f->value, expectation, h);
    return STEP_OK;
}

/* Field lines from h->pos to the empty line; on success h->pos is the head length. */
static enum step parse_fields(struct head *h)
{
    const char *buf = h->buf;
    size_t p = h->pos;

    for (;;) {
        if (p >= h->end)
            return STEP_MORE;
        unsigned char c = (unsigned char)buf[p];
        if (c == '\r') {
            enum step s = line_end(h, p);
            if (s != STEP_OK)
                return s;
            h->pos = p + 2;
            return STEP_OK;
        }
        if (c == '\n')
            return fail(h, H1_ERR_BARE_LF, p);
        /* obs-fold, or whitespace between the start line and the first field (RFC 9112 §2.2) */
        if (is_ows(c))
            return fail(h, H1_ERR_OBS_FOLD, p);
        if (h->n_headers >= h->limits->max_headers)
            return fail(h, H1_ERR_TOO_MANY_HEADERS, p);

        size_t name = p;
        while (p < h->end && is_tchar((unsigned char)buf[p]))
            p++;
        if (p >= h->end)
            return STEP_MORE;
        if (buf[p] != ':' || p == name)
            return fail(h, H1_ERR_HEADER_NAME, p);
        size_t name_end = p++;

        while (p < h->end && is_ows((unsigned char)buf[p]))
            p++;
        size_t value = p;
        size_t value_end = p;
        for (;; p++) {
            if (p >= h->end)
                return STEP_MORE;
            c = (unsigned char)buf[p];
            if (c == '\r')
                break;
            if (c == '\n')
                return fail(h, H1_ERR_BARE_LF, p);
            if (is_ows(c))
                continue;
            if (!is_field_vchar(c))
                return fail(h, H1_ERR_HEADER_VALUE, p);
            value_end = p + 1;
        }
        enum step s = line_end(h, p);
        if (s != STEP_OK)
            return s;

        struct h1_header *f = &h->headers[h->n_headers++];
        f->name = (struct h1_slice){buf + name, name_end - name};
        f->value = (struct h1_slice){buf + value, value_end - value};
        s = note_field(h, f, name, value);
        if (s != STEP_OK)
            return s;
        p += 2;
    }
}

static void head_init(struct head *h, const char *buf, size_t len, const struct h1_limits *limits,
                      struct h1_header *headers, bool request)
{
    memset(h, 0, sizeof(*h));
    h->buf = buf;
    h->len = len;
    h->end = len < limits->max_head ? len : limits->max_head;
    h->request = request;
    h->limits = limits;
    h->headers = headers;
    h->host = (struct h1_slice){buf, 0};
}

/* Turns the walk's outcome into the public status and error fields. */
static int head_result(struct head *h, enum step s, enum h1_error *error, size_t *error_pos)
{
    if (s == STEP_MORE && h->len >= h->limits->max_head)
        s = fail(h, H1_ERR_HEAD_TOO_LARGE, h->limits->max_head);
    *error = H1_ERR_NONE;
    *error_pos = 0;
    switch (s) {
    case STEP_OK:
        return H1_COMPLETE;
    case STEP_MORE:
        return H1_INCOMPLETE;
    case STEP_FAIL:
        break;
    }
    *error = h->error;
    *error_pos = h->error_pos;
    return H1_ERROR;
}

static bool keep_alive(const struct head *h)
{
    if (h->conn_close)
        return false;
    return h->minor >= 1 || h->conn_keep_alive;
}

int h1_parse_request(const char *buf, size_t len, const struct h1_limits *limits,
                     struct h1_header *headers, struct h1_request *out)
{
    struct h1_limits defaults;
    if (!limits) {
        h1_limits_default(&defaults);
        limits = &defaults;
    }
    struct head h;
    head_init(&h, buf, len, limits, headers, true);
    memset(out, 0, sizeof(*out));
    out->method = out->target = out->host = (struct h1_slice){buf, 0};
    out->headers = headers;

    enum step s = parse_request_line(&h, out);
    if (s == STEP_OK)
        s = parse_fields(&h);
    /* RFC 9112 §3.2: an HTTP/1.1 request must have a Host (it may be empty). */
    if (s == STEP_OK && h.minor == 1 && h.host_count == 0)
        s = fail(&h, H1_ERR_HOST, h.pos - 2);

    out->minor_version = h.minor;
    out->n_headers = h.n_headers;
    int rc = head_result(&h, s, &out->error, &out->error_pos);
    if (rc != H1_COMPLETE)
        return rc;

    out->head_len = h.pos;
    out->host = h.host;
    if (h.have_te) {
        out->body = H1_BODY_CHUNKED;
    } else if (h.have_cl) {
        out->body = H1_BODY_LENGTH;
        out->content_length = h.cl;
    } else {
        out->body = H1_BODY_NONE;
    }
    out->keep_alive = keep_alive(&h);
    /* RFC 9110 §10.1.1 and §7.8: HTTP/1.0 requests cannot ask for either. */
    out->expect_continue = h.minor == 1 && h.expect_continue;
    out->upgrade = h.minor == 1 && h.conn_upgrade && h.have_upgrade;
    return H1_COMPLETE;
}

int h1_parse_response(const char *buf, size_t len, const struct h1_limits *limits,
                      struct h1_header *headers, bool request_was_head, struct h1_response *out)
{
    struct h1_limits defaults;
    if (!limits) {
        h1_limits_default(&defaults);
        limits = &defaults;
    }
    struct head h;
    head_init(&h, buf, len, limits, headers, false);
    memset(out, 0, sizeof(*out));
    out->reason = (struct h1_slice){buf, 0};
    out->headers = headers;

    enum step s = parse_status_line(&h, out);
    if (s == STEP_OK)
        s = parse_fields(&h);

    out->minor_version = h.minor;
    out->n_headers = h.n_headers;
    int rc = head_result(&h, s, &out->error, &out->error_pos);
    if (rc != H1_COMPLETE)
        return rc;

    out->head_len = h.pos;
    out->keep_alive = keep_alive(&h);
    /* RFC 9112 §6.3, in its order. */
    if (request_was_head || out->status < 200 || out->status == 204 || out->status == 304) {
        out->body = H1_BODY_NONE;
    } else if (h.have_te) {
        out->body = h.te_last_chunked ? H1_BODY_CHUNKED : H1_BODY_CLOSE;
    } else if (h.have_cl) {
        out->body = H1_BODY_LENGTH;
        out->content_length = h.cl;
    } else {
        out->body = H1_BODY_CLOSE;
    }
    /* A body read until close ends the connection; and a response framed by both TE and CL is
     * suspicious enough (RFC 9112 §6.3, item 3) that the connection is not reused. */
    if (out->body == H1_BODY_CLOSE || (h.have_te && h.have_cl))
        out->keep_alive = false;
    return H1_COMPLETE;
}

/* ---- chunked decoder ---- */

/* The order matters: the states before CS_SIZE_LF are inside a chunk-size line, and those from
 * CS_TRAILER_START to CS_END_LF inside the trailer section (see chunk_byte()). */
enum chunk_state {
    CS_SIZE_FIRST = 0,  /* first hex digit of a chunk-size */
    CS_SIZE,            /* more hex digits, ';' or CR */
    CS_EXT_BEFORE_NAME, /* after ';': BWS, then an extension name */
    CS_EXT_NAME,
    CS_EXT_AFTER_NAME,   /* BWS after a name: '=' or ';' must follow */
    CS_EXT_BEFORE_VALUE, /* after '=': BWS, then a token or a quoted-string */
    CS_EXT_TOKEN,
    CS_EXT_QUOTED,
    CS_EXT_QUOTED_PAIR,
    CS_EXT_AFTER_QUOTE, /* right after the closing quote */
    CS_EXT_AFTER_VALUE, /* BWS after a value: ';' must follow */
    CS_SIZE_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER_START, /* start of a trailer line, or of the final empty line */
    CS_TRAILER_NAME,
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_END_LF,
    CS_DONE,
    CS_ERROR,
};

void h1_chunked_init(struct h1_chunked *st)
{
    memset(st, 0, sizeof(*st));
    st->state = CS_SIZE_FIRST;
    st->max_line = H1_CHUNKED_DEFAULT_MAX_LINE;
    st->max_trailers = H1_CHUNKED_DEFAULT_MAX_TRAILERS;
}

static int chunk_fail(struct h1_chunked *st, size_t pos, size_t *consumed)
{
    st->state = CS_ERROR;
    *consumed = pos;
    return H1_CHUNK_ERROR;
}

/* One framing byte (anything but chunk data). Returns false when the byte is invalid here. */
static bool chunk_byte(struct h1_chunked *st, unsigned char c)
{
    bool in_line = st->state < CS_SIZE_LF || st->state == CS_TRAILER_NAME ||
                   st->state == CS_TRAILER_VALUE || st->state == CS_TRAILER_START;
    if (in_line && c != '\r' && ++st->line_len > st->max_line)
        return false;
    if (st->state >= CS_TRAILER_START && ++st->trailer_bytes > st->max_trailers)
        return false;

    switch ((enum chunk_state)st->state) {
    case CS_SIZE_FIRST:
        if (hex_value(c) < 0)
            return false;
        st->remaining = (uint64_t)hex_value(c);
        st->state = CS_SIZE;
        return true;
    case CS_SIZE:
        if (hex_value(c) >= 0) {
            if (st->remaining > (H1_MAX_LENGTH >> 4))
                return false;
            st->remaining = (st->remaining << 4) | (uint64_t)hex_value(c);
            return true;
        }
        if (c == ';')
            st->state = CS_EXT_BEFORE_NAME;
        else if (c == '\r')
            st->state = CS_SIZE_LF;
        else
            return false;
        return true;
    case CS_EXT_BEFORE_NAME:
        if (is_ows(c))
            return true;
        if (!is_tchar(c))
            return false;
        st->state = CS_EXT_NAME;
        return true;
    case CS_EXT_NAME:
        if (is_tchar(c))
            return true;
        if (is_ows(c))
            st->state = CS_EXT_AFTER_NAME;
        else if (c == '=')
            st->state = CS_EXT_BEFORE_VALUE;
        else if (c == ';')
            st->state = CS_EXT_BEFORE_NAME;
        else if (c == '\r')
            st->state = CS_SIZE_LF;
        else
            return false;
        return true;
    case CS_EXT_AFTER_NAME:
        if (is_ows(c))
            return true;
        if (c == '=')
            st->state = CS_EXT_BEFORE_VALUE;
        else if (c == ';')
            st->state = CS_EXT_BEFORE_NAME;
        else
            return false;
        return true;
    case CS_EXT_BEFORE_VALUE:
        if (is_ows(c))
            return true;
        if (c == '"')
            st->state = CS_EXT_QUOTED;
        else if (is_tchar(c))
            st->state = CS_EXT_TOKEN;
        else
            return false;
        return true;
    case CS_EXT_TOKEN:
        if (is_tchar(c))
            return true;
        if (is_ows(c))
            st->state = CS_EXT_AFTER_VALUE;
        else if (c == ';')
            st->state = CS_EXT_BEFORE_NAME;
        else if (c == '\r')
            st->state = CS_SIZE_LF;
        else
            return false;
        return true;
    case CS_EXT_QUOTED:
        /* qdtext (RFC 9110 §5.6.4): no controls but HTAB, so no CR or LF can hide in here */
        if (c == '"')
            st->state = CS_EXT_AFTER_QUOTE;
        else if (c == '\\')
            st->state = CS_EXT_QUOTED_PAIR;
        else if (c != '\t' && c != ' ' && !is_field_vchar(c))
            return false;
        return true;
    case CS_EXT_QUOTED_PAIR:
        if (c != '\t' && c != ' ' && !is_field_vchar(c))
            return false;
        st->state = CS_EXT_QUOTED;
        return true;
    case CS_EXT_AFTER_QUOTE:
        if (c == '\r')
            st->state = CS_SIZE_LF;
        else if (c == ';')
            st->state = CS_EXT_BEFORE_NAME;
        else if (is_ows(c))
            st->state = CS_EXT_AFTER_VALUE;
        else
            return false;
        return true;
    case CS_EXT_AFTER_VALUE:
        if (is_ows(c))
            return true;
        if (c != ';')
            return false;
        st->state = CS_EXT_BEFORE_NAME;
        return true;
    case CS_SIZE_LF:
        if (c != '\n')
            return false;
        st->line_len = 0;
        st->state = st->remaining == 0 ? CS_TRAILER_START : CS_DATA;
        return true;
    case CS_DATA_CR:
        if (c != '\r')
            return false;
        st->state = CS_DATA_LF;
        return true;
    case CS_DATA_LF:
        if (c != '\n')
            return false;
        st->state = CS_SIZE_FIRST;
        return true;
    case CS_TRAILER_START:
        if (c == '\r')
            st->state = CS_END_LF;
        else if (is_tchar(c))
            st->state = CS_TRAILER_NAME;
        else
            return false; /* bare LF, obs-fold, or not a field name */
        return true;
    case CS_TRAILER_NAME:
        if (is_tchar(c))
            return true;
        if (c != ':')
            return false;
        st->state = CS_TRAILER_VALUE;
        return true;
    case CS_TRAILER_VALUE:
        if (c == '\r')
            st->state = CS_TRAILER_LF;
        else if (c != '\t' && c != ' ' && !is_field_vchar(c))
            return false;
        return true;
    case CS_TRAILER_LF:
        if (c != '\n')
            return false;
        st->line_len = 0;
        st->state = CS_TRAILER_START;
        return true;
    case CS_END_LF:
        if (c != '\n')
            return false;
        st->state = CS_DONE;
        return true;
    case CS_DATA:
    case CS_DONE:
    case CS_ERROR:
        break;
    }
    return false;
}

int h1_chunked_next(struct h1_chunked *st, const char *in, size_t len, size_t *consumed,
                    struct h1_slice *data)
{
    *data = (struct h1_slice){in, 0};
    if (st->state == CS_ERROR)
        return chunk_fail(st, 0, consumed);
    if (st->state == CS_DONE) {
        *consumed = 0;
        return H1_CHUNK_DONE;
    }

    for (size_t i = 0; i < len; i++) {
        if (st->state == CS_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > st->remaining)
                n = (size_t)st->remaining;
            st->remaining -= n;
            if (st->remaining == 0)
                st->state = CS_DATA_CR;
            *data = (struct h1_slice){in + i, n};
            *consumed = i + n;
            return H1_CHUNK_DATA;
        }
        if (!chunk_byte(st, (unsigned char)in[i]))
            return chunk_fail(st, i, consumed);
        if (st->state == CS_DONE) {
            *consumed = i + 1;
            return H1_CHUNK_DONE;
        }
    }
    *consumed = len;
    return H1_CHUNK_NEED_MORE;
}
