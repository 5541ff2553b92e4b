/*
 * cfg_errors: the collected problems of a config load, their `file:line:col: key: reason`
 * format, and the "did you mean" suggestions made for unknown keys and dangling references.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

void cfg_errors_init(struct cfg_errors *errs)
{
    memset(errs, 0, sizeof *errs);
}

void cfg_errors_free(struct cfg_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        free(errs->v[i].file);
        free(errs->v[i].key);
        free(errs->v[i].msg);
    }
    free(errs->v);
    memset(errs, 0, sizeof *errs);
}

static void errors_vadd(struct cfg_errors *errs, enum cfg_severity sev, const struct cfg_pos *pos,
                        const char *key, const char *fmt, va_list ap)
{
    if (errs->count == errs->cap) {
        errs->cap = errs->cap ? errs->cap * 2 : 16;
        errs->v = cfg_xrealloc(errs->v, errs->cap, sizeof *errs->v);
    }
    struct cfg_error *e = &errs->v[errs->count++];
    e->severity = sev;
    e->file = cfg_xstrdup(pos && pos->file ? pos->file : "");
    e->line = pos ? pos->line : 0;
    e->col = pos ? pos->col : 0;
    e->key = cfg_xstrdup(key ? key : "");

    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        len = 0;
    e->msg = cfg_xmalloc((size_t)len + 1);
    vsnprintf(e->msg, (size_t)len + 1, fmt, ap);

    if (sev == CFG_SEV_ERROR)
        errs->n_errors++;
    else
        errs->n_warnings++;
}

void cfg_errors_add(struct cfg_errors *errs, enum cfg_severity sev, const struct cfg_pos *pos,
                    const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_vadd(errs, sev, pos, key, fmt, ap);
    va_end(ap);
}

void cfg_err_pos(struct cfg_loader *ld, const struct cfg_pos *pos, const char *key, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_vadd(ld->errs, CFG_SEV_ERROR, pos, key, fmt, ap);
    va_end(ap);
}

void cfg_warn_pos(struct cfg_loader *ld, const struct cfg_pos *pos, const char *key,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_vadd(ld->errs, CFG_SEV_WARNING, pos, key, fmt, ap);
    va_end(ap);
}

/* Insertion sort: error lists are short, and it is stable, so equal positions keep their order
 * (the order checks were made in, which reads naturally). */
void cfg_errors_sort(struct cfg_errors *errs)
{
    for (size_t i = 1; i < errs->count; i++) {
        struct cfg_error e = errs->v[i];
        size_t j = i;
        while (j > 0) {
            const struct cfg_error *p = &errs->v[j - 1];
            int c = strcmp(p->file, e.file);
            if (c < 0 || (c == 0 && (p->line < e.line || (p->line == e.line && p->col <= e.col))))
                break;
            errs->v[j] = errs->v[j - 1];
            j--;
        }
        errs->v[j] = e;
    }
}

int cfg_error_format(const struct cfg_error *e, char *buf, size_t size)
{
    char where[64] = "";
    if (e->line > 0)
        snprintf(where, sizeof where, ":%d:%d", e->line, e->col);
    const char *sev = e->severity == CFG_SEV_WARNING ? "warning: " : "";
    if (e->key[0])
        return snprintf(buf, size, "%s%s: %s%s: %s", e->file, where, sev, e->key, e->msg);
    return snprintf(buf, size, "%s%s: %s%s", e->file, where, sev, e->msg);
}

void cfg_errors_print(const struct cfg_errors *errs, FILE *out)
{
    for (size_t i = 0; i < errs->count; i++) {
        int len = cfg_error_format(&errs->v[i], NULL, 0);
        if (len < 0)
            continue;
        char *line = cfg_xmalloc((size_t)len + 1);
        cfg_error_format(&errs->v[i], line, (size_t)len + 1);
        fprintf(out, "%s\n", line);
        free(line);
    }
}

/* ---- suggestions ----------------------------------------------------------------------------- */

/* Case, '-' and '_' are ignored, so `requestTimeout` and `request_timeout` find request-timeout. */
static size_t normalise(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s && n + 1 < size; s++) {
        if (*s == '-' || *s == '_')
            continue;
        out[n++] = (char)tolower((unsigned char)*s);
    }
    out[n] = '\0';
    return n;
}

#define NORM_MAX 128

size_t cfg_edit_distance(const char *a, const char *b)
{
    char na[NORM_MAX], nb[NORM_MAX];
    size_t la = normalise(a, na, sizeof na), lb = normalise(b, nb, sizeof nb);
    /* Three rows of the dynamic programme: OSA needs the row before the previous one for
     * transpositions ("mian" -> "main" is one edit, not two). */
    size_t rows[3][NORM_MAX];
    size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = na[i - 1] == nb[j - 1] ? 0 : 1;
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (prev[j - 1] + cost < best)
                best = prev[j - 1] + cost;
            if (i > 1 && j > 1 && na[i - 1] == nb[j - 2] && na[i - 2] == nb[j - 1] &&
                pp[j - 2] + 1 < best)
                best = pp[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *cfg_suggest(const char *word, const char *const *candidates, size_t n)
{
    char nw[NORM_MAX];
    size_t len = normalise(word, nw, sizeof nw);
    /* A third of the word may be wrong: catches typos and near-synonyms without proposing
     * unrelated short keys ("port" for "path"). */
    size_t limit = len / 3 > 1 ? len / 3 : 1;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i] || strcmp(candidates[i], word) == 0)
            continue;
        size_t d = cfg_edit_distance(word, candidates[i]);
        char nc[NORM_MAX];
        normalise(candidates[i], nc, sizeof nc);
        /* An abbreviation ("prio" for priority) is as plausible as a typo. */
        if (len >= 3 && strncmp(nc, nw, len) == 0 && d > limit)
            d = limit;
        if (d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}
