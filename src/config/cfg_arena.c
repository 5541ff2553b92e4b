/*
 * cfg_arena: the config's allocator. A loaded config is immutable and freed as a whole, so a
 * bump allocator over a chain of chunks fits: no per-object frees, one cfg_free().
 */
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg_internal.h"

#define CHUNK_MIN (16u * 1024)

struct chunk {
    struct chunk *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

struct cfg_arena {
    struct chunk *head;
};

void *cfg_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        fprintf(stderr, "gatehouse: out of memory while loading the configuration\n");
        abort();
    }
    return p;
}

void *cfg_xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        fprintf(stderr, "gatehouse: allocation too large while loading the configuration\n");
        abort();
    }
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) {
        fprintf(stderr, "gatehouse: out of memory while loading the configuration\n");
        abort();
    }
    return q;
}

char *cfg_xstrdup(const char *s)
{
    size_t len = strlen(s);
    char *d = cfg_xmalloc(len + 1);
    memcpy(d, s, len + 1);
    return d;
}

struct cfg_arena *cfg_arena_new(void)
{
    struct cfg_arena *ar = cfg_xmalloc(sizeof *ar);
    ar->head = NULL;
    return ar;
}

void cfg_arena_free(struct cfg_arena *ar)
{
    if (!ar)
        return;
    struct chunk *c = ar->head;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(ar);
}

void *cfg_arena_alloc(struct cfg_arena *ar, size_t size)
{
    const size_t align = alignof(max_align_t);
    if (size > SIZE_MAX / 2) {
        fprintf(stderr, "gatehouse: allocation too large while loading the configuration\n");
        abort();
    }
    size = (size + align - 1) & ~(align - 1);
    struct chunk *c = ar->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > CHUNK_MIN ? size : CHUNK_MIN;
        c = cfg_xmalloc(sizeof *c + cap);
        c->used = 0;
        c->cap = cap;
        c->next = ar->head;
        ar->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

void *cfg_arena_array(struct cfg_arena *ar, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / 2 / size) {
        fprintf(stderr, "gatehouse: allocation too large while loading the configuration\n");
        abort();
    }
    return cfg_arena_alloc(ar, n * size);
}

char *cfg_arena_strndup(struct cfg_arena *ar, const char *s, size_t len)
{
    char *d = cfg_arena_alloc(ar, len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *cfg_arena_strdup(struct cfg_arena *ar, const char *s)
{
    return cfg_arena_strndup(ar, s, strlen(s));
}

char *cfg_arena_printf(struct cfg_arena *ar, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    char *d = cfg_arena_alloc(ar, (size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return d;
}
