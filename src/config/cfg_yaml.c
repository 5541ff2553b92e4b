/*
 * cfg_yaml: YAML text to a small tree that keeps every node's line and column.
 *
 * libfyaml's document API does not expose the start mark of mappings and sequences, and the
 * messages need a position for every object, so the tree is built here from parser events,
 * whose marks are complete. The tree is plain data in an arena: the schema walk
 * (config_load.c) never touches libfyaml.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libfyaml.h>

#include "config/cfg_internal.h"

/* Aliases share nodes, so a small file can describe a huge tree; the walk visits the expanded
 * tree, so its size is bounded (a config has a few thousand nodes at most). */
#define MAX_EXPANDED_NODES 1000000

struct anchor {
    const char *name;
    struct cfg_ynode *node;
};

struct builder {
    struct fy_parser *parser;
    struct cfg_arena *ar;
    struct cfg_errors *errs;
    const char *file;
    struct anchor *anchors;
    size_t n_anchors, cap_anchors;
    int last_line, last_col; /* position of the last event that had one */
    bool failed;             /* stop: the parser failed or a hard limit was hit */
};

/* A growable vector of pointers, malloc'd while a collection is open, copied into the arena
 * when it closes. */
struct vec {
    void **v;
    size_t n, cap;
};

static void vec_push(struct vec *vec, void *p)
{
    if (vec->n == vec->cap) {
        vec->cap = vec->cap ? vec->cap * 2 : 8;
        vec->v = cfg_xrealloc(vec->v, vec->cap, sizeof *vec->v);
    }
    vec->v[vec->n++] = p;
}

__attribute__((format(printf, 4, 5))) static void report(struct builder *b, int line, int col,
                                                         const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct cfg_pos pos = {b->file, line, col};
    cfg_errors_add(b->errs, CFG_SEV_ERROR, &pos, "", "%s", msg);
}

static void take_mark(struct builder *b, struct fy_event *ev, int *line, int *col)
{
    const struct fy_mark *m = fy_event_start_mark(ev);
    if (m && m->line >= 0 && m->column >= 0) {
        b->last_line = m->line + 1;
        b->last_col = m->column + 1;
    }
    /* Events without a mark (an empty value, `key:`) take the position of the event before
     * them, which is their key: the best place to point at. */
    *line = b->last_line;
    *col = b->last_col;
}

static struct fy_event *next_event(struct builder *b)
{
    struct fy_event *ev = fy_parser_parse(b->parser);
    if (!ev)
        b->failed = true;
    return ev;
}

static const char *token_text(struct builder *b, struct fy_token *t, size_t *len)
{
    size_t l = 0;
    const char *s = t ? fy_token_get_text(t, &l) : NULL;
    if (!s) {
        s = "";
        l = 0;
    }
    if (len)
        *len = l;
    return cfg_arena_strndup(b->ar, s, l);
}

static void add_anchor(struct builder *b, const char *name, struct cfg_ynode *node)
{
    if (b->n_anchors == b->cap_anchors) {
        b->cap_anchors = b->cap_anchors ? b->cap_anchors * 2 : 8;
        b->anchors = cfg_xrealloc(b->anchors, b->cap_anchors, sizeof *b->anchors);
    }
    b->anchors[b->n_anchors].name = name;
    b->anchors[b->n_anchors].node = node;
    b->n_anchors++;
}

static struct cfg_ynode *find_anchor(struct builder *b, const char *name)
{
    /* Newest first: YAML lets an anchor be redefined, and an alias means the latest one. */
    for (size_t i = b->n_anchors; i > 0; i--) {
        if (strcmp(b->anchors[i - 1].name, name) == 0)
            return b->anchors[i - 1].node;
    }
    return NULL;
}

static size_t add_weight(size_t a, size_t b)
{
    return a > MAX_EXPANDED_NODES || b > MAX_EXPANDED_NODES ? MAX_EXPANDED_NODES + 1 : a + b;
}

static struct cfg_ynode *build(struct builder *b, struct fy_event *ev);

static struct cfg_ynode *new_node(struct builder *b, enum cfg_ykind kind, int line, int col)
{
    struct cfg_ynode *n = cfg_arena_alloc(b->ar, sizeof *n);
    n->kind = kind;
    n->line = line;
    n->col = col;
    n->weight = 1;
    return n;
}

static bool check_weight(struct builder *b, struct cfg_ynode *n)
{
    if (n->weight <= MAX_EXPANDED_NODES)
        return true;
    report(b, n->line, n->col, "document too large: more than %d nodes once aliases are expanded",
           MAX_EXPANDED_NODES);
    b->failed = true;
    return false;
}

static struct cfg_ynode *build_scalar(struct builder *b, struct fy_event *ev)
{
    int line, col;
    take_mark(b, ev, &line, &col);
    struct cfg_ynode *n = new_node(b, CFG_Y_SCALAR, line, col);
    n->str = token_text(b, ev->scalar.value, &n->len);
    enum fy_scalar_style style =
            ev->scalar.value ? fy_token_scalar_style(ev->scalar.value) : FYSS_PLAIN;
    n->plain = style == FYSS_PLAIN;
    /* libfyaml marks a quoted scalar at its first character; point at the opening quote. */
    if ((style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED) && n->col > 1)
        n->col--;
    if (memchr(n->str, '\0', n->len))
        report(b, n->line, n->col, "a string contains a NUL character");
    if (ev->scalar.anchor)
        add_anchor(b, token_text(b, ev->scalar.anchor, NULL), n);
    fy_parser_event_free(b->parser, ev);
    return n;
}

static struct cfg_ynode *build_alias(struct builder *b, struct fy_event *ev)
{
    int line, col;
    take_mark(b, ev, &line, &col);
    if (col > 1)
        col--; /* the mark is after the '*' */
    const char *name = token_text(b, ev->alias.anchor, NULL);
    fy_parser_event_free(b->parser, ev);
    struct cfg_ynode *n = find_anchor(b, name);
    if (!n) {
        /* An alias inside the collection it names also lands here (anchors are registered when
         * their node is complete), which keeps the tree free of cycles. */
        report(b, line, col, "alias '*%s' does not name an anchor defined before it", name);
        n = new_node(b, CFG_Y_SCALAR, line, col);
        n->str = "";
        n->plain = true;
    }
    return n;
}

static struct cfg_ynode *build_seq(struct builder *b, struct fy_event *ev)
{
    int line, col;
    take_mark(b, ev, &line, &col);
    const char *anchor =
            ev->sequence_start.anchor ? token_text(b, ev->sequence_start.anchor, NULL) : NULL;
    fy_parser_event_free(b->parser, ev);

    struct cfg_ynode *n = new_node(b, CFG_Y_SEQ, line, col);
    struct vec items = {0};
    for (;;) {
        struct fy_event *e = next_event(b);
        if (!e)
            break;
        if (e->type == FYET_SEQUENCE_END) {
            fy_parser_event_free(b->parser, e);
            break;
        }
        struct cfg_ynode *item = build(b, e);
        if (!item)
            break;
        vec_push(&items, item);
        n->weight = add_weight(n->weight, item->weight);
    }
    if (b->failed || !check_weight(b, n)) {
        free(items.v);
        return NULL;
    }
    n->n = items.n;
    n->items = cfg_arena_array(b->ar, items.n, sizeof *n->items);
    if (items.n)
        memcpy(n->items, items.v, items.n * sizeof *n->items);
    free(items.v);
    if (anchor)
        add_anchor(b, anchor, n);
    return n;
}

static struct cfg_ynode *build_map(struct builder *b, struct fy_event *ev)
{
    int line, col;
    take_mark(b, ev, &line, &col);
    const char *anchor =
            ev->mapping_start.anchor ? token_text(b, ev->mapping_start.anchor, NULL) : NULL;
    fy_parser_event_free(b->parser, ev);

    struct cfg_ynode *n = new_node(b, CFG_Y_MAP, line, col);
    struct vec keys = {0}, values = {0};
    for (;;) {
        struct fy_event *e = next_event(b);
        if (!e)
            break;
        if (e->type == FYET_MAPPING_END) {
            fy_parser_event_free(b->parser, e);
            break;
        }
        struct cfg_ynode *key = build(b, e);
        if (!key)
            break;
        e = next_event(b);
        if (!e)
            break;
        struct cfg_ynode *value = build(b, e);
        if (!value)
            break;

        if (key->kind != CFG_Y_SCALAR) {
            report(b, key->line, key->col, "mapping keys must be strings");
            continue;
        }
        if (key->plain && strcmp(key->str, "<<") == 0) {
            report(b, key->line, key->col,
                   "YAML merge keys ('<<') are not supported; write the keys out");
            continue;
        }
        bool dup = false;
        for (size_t i = 0; i < keys.n; i++) {
            const struct cfg_ynode *k = keys.v[i];
            if (strcmp(k->str, key->str) == 0) {
                struct cfg_pos pos = {b->file, key->line, key->col};
                cfg_errors_add(b->errs, CFG_SEV_ERROR, &pos, key->str,
                               "duplicate key (first at line %d)", k->line);
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        vec_push(&keys, key);
        vec_push(&values, value);
        n->weight = add_weight(n->weight, value->weight);
    }
    if (b->failed || !check_weight(b, n)) {
        free(keys.v);
        free(values.v);
        return NULL;
    }
    n->n = keys.n;
    n->pairs = cfg_arena_array(b->ar, keys.n, sizeof *n->pairs);
    for (size_t i = 0; i < keys.n; i++) {
        n->pairs[i].key = keys.v[i];
        n->pairs[i].value = values.v[i];
    }
    free(keys.v);
    free(values.v);
    if (anchor)
        add_anchor(b, anchor, n);
    return n;
}

/* Builds the node that starts with ev (consumed). NULL when the parse cannot go on. */
static struct cfg_ynode *build(struct builder *b, struct fy_event *ev)
{
    switch (ev->type) {
    case FYET_SCALAR:
        return build_scalar(b, ev);
    case FYET_ALIAS:
        return build_alias(b, ev);
    case FYET_SEQUENCE_START:
        return build_seq(b, ev);
    case FYET_MAPPING_START:
        return build_map(b, ev);
    default: {
        int line, col;
        take_mark(b, ev, &line, &col);
        report(b, line, col, "unexpected YAML event %s", fy_event_type_get_text(ev->type));
        fy_parser_event_free(b->parser, ev);
        b->failed = true;
        return NULL;
    }
    }
}

/* Expects an event of the given type; consumes it. */
static bool expect(struct builder *b, enum fy_event_type type, struct fy_event **got)
{
    struct fy_event *ev = next_event(b);
    if (!ev)
        return false;
    if (ev->type == type) {
        fy_parser_event_free(b->parser, ev);
        return true;
    }
    *got = ev; /* the caller decides what an unexpected event means */
    return false;
}

static void discard_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

static void report_syntax_errors(struct builder *b, struct fy_diag *diag)
{
    size_t before = b->errs->count;
    void *iter = NULL;
    struct fy_diag_error *de;
    while ((de = fy_diag_errors_iterate(diag, &iter)) != NULL) {
        if (de->type < FYET_ERROR)
            continue;
        /* libfyaml's collected errors are 1-based already. */
        report(b, de->line > 0 ? de->line : b->last_line, de->column > 0 ? de->column : 1,
               "YAML syntax error: %s", de->msg ? de->msg : "invalid YAML");
    }
    if (b->errs->count == before)
        report(b, b->last_line, b->last_col, "YAML syntax error");
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/*
 * A config is UTF-8 text without NUL bytes. Checked before libfyaml sees it: besides giving a
 * clear position, this keeps libfyaml 0.7 away from invalid bytes in directives, on which its
 * scanner loops forever (found by fuzzing).
 */
static bool check_text(struct builder *b, const char *text, size_t len)
{
    const unsigned char *p = (const unsigned char *)text;
    int line = 1, col = 1;
    for (size_t i = 0; i < len;) {
        size_t n = p[i] ? utf8_sequence(p + i, len - i) : 0;
        if (n == 0) {
            if (p[i] == 0)
                report(b, line, col, "the file contains a NUL byte; a config is UTF-8 text");
            else
                report(b, line, col, "invalid UTF-8 (byte 0x%02x); a config is UTF-8 text", p[i]);
            return false;
        }
        if (p[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return true;
}

struct cfg_ynode *cfg_yaml_parse(struct cfg_arena *ar, const char *text, size_t len,
                                 const char *file, struct cfg_errors *errs, bool *empty)
{
    *empty = false;
    struct builder b = {.ar = ar, .errs = errs, .file = file, .last_line = 1, .last_col = 1};
    if (!check_text(&b, text, len))
        return NULL;

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = discard_output;
    dcfg.colorize = false;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) {
        fprintf(stderr, "gatehouse: out of memory while loading the configuration\n");
        abort();
    }
    /* Collected errors give line and column as numbers. Known cost: libfyaml 0.7.12 leaks one
     * buffer (1-4 KiB) for some syntax errors in this mode, even after fy_diag_destroy(); it is
     * per failed load, and a fuzz target over this loader needs an LSan suppression for
     * libfyaml.so. */
    fy_diag_set_collect_errors(diag, true);

    struct fy_parse_cfg pcfg = {
            .flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2,
            .diag = diag,
    };
    b.parser = fy_parser_create(&pcfg);
    if (!b.parser || fy_parser_set_string(b.parser, text, len) != 0) {
        report(&b, 0, 0, "cannot start the YAML parser");
        if (b.parser)
            fy_parser_destroy(b.parser);
        fy_diag_destroy(diag);
        return NULL;
    }

    size_t errors_before = errs->n_errors;
    struct cfg_ynode *root = NULL;
    struct fy_event *ev = NULL;
    if (!expect(&b, FYET_STREAM_START, &ev))
        goto out;
    if (!expect(&b, FYET_DOCUMENT_START, &ev)) {
        if (ev && ev->type == FYET_STREAM_END)
            *empty = true; /* nothing but comments */
        goto out;
    }
    ev = next_event(&b);
    if (!ev)
        goto out;
    root = build(&b, ev);
    ev = NULL;
    if (!root)
        goto out;
    if (!expect(&b, FYET_DOCUMENT_END, &ev))
        goto out;
    if (!expect(&b, FYET_STREAM_END, &ev)) {
        if (ev && ev->type == FYET_DOCUMENT_START) {
            int line, col;
            take_mark(&b, ev, &line, &col);
            report(&b, line, col, "only one YAML document is allowed in a config file");
        }
        goto out;
    }
out:
    if (ev)
        fy_parser_event_free(b.parser, ev);
    if (b.failed && fy_parser_get_stream_error(b.parser))
        report_syntax_errors(&b, diag);
    else if (b.failed && errs->n_errors == errors_before)
        report(&b, b.last_line, b.last_col, "YAML syntax error");
    fy_parser_destroy(b.parser);
    fy_diag_destroy(diag);
    free(b.anchors);

    if (root && root->kind == CFG_Y_SCALAR && cfg_ynode_is_null(root) && !*empty &&
        errs->n_errors == errors_before) {
        *empty = true; /* "---" alone */
        return NULL;
    }
    if (errs->n_errors != errors_before)
        return NULL;
    return root;
}

bool cfg_ynode_is_null(const struct cfg_ynode *n)
{
    if (n->kind != CFG_Y_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *cfg_ynode_describe(const struct cfg_ynode *n)
{
    switch (n->kind) {
    case CFG_Y_SEQ:
        return "a list";
    case CFG_Y_MAP:
        return "a mapping";
    case CFG_Y_SCALAR:
        break;
    }
    if (cfg_ynode_is_null(n))
        return "nothing (null)";
    return n->plain ? "a scalar" : "a quoted string";
}
