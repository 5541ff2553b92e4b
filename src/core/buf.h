/*
 * buf: a bounded byte buffer with a read and a write position. Used for every connection's input
 * and output: its capacity is the back-pressure bound (a full output buffer stops reading the
 * other side).
 */
#ifndef GATEHOUSE_CORE_BUF_H
#define GATEHOUSE_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t cap;
    size_t start; /* first unread byte */
    size_t end;   /* one past the last written byte */
};

/* Allocates <cap> bytes. Returns 0 or -1. */
int buf_init(struct buf *b, size_t cap);
void buf_free(struct buf *b);

static inline size_t buf_len(const struct buf *b)
{
    return b->end - b->start;
}

static inline char *buf_head(const struct buf *b)
{
    return b->data + b->start;
}

/* Free room at the end, after moving unread bytes to the front when that makes room. */
size_t buf_room(struct buf *b);

static inline char *buf_tail(const struct buf *b)
{
    return b->data + b->end;
}

static inline void buf_produced(struct buf *b, size_t n)
{
    b->end += n;
}

static inline void buf_consume(struct buf *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Appends; returns false (and appends nothing) when it does not fit. */
bool buf_append(struct buf *b, const void *data, size_t len);

/* Grows the capacity to at least <cap> (never shrinks). Returns 0 or -1. */
int buf_reserve(struct buf *b, size_t cap);

#endif
