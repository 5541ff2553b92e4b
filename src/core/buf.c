#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

int buf_init(struct buf *b, size_t cap)
{
    b->data = malloc(cap);
    b->cap = b->data ? cap : 0;
    b->start = b->end = 0;
    return b->data ? 0 : -1;
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->start = b->end = 0;
}

size_t buf_room(struct buf *b)
{
    if (b->start > 0 && b->end == b->cap) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    return b->cap - b->end;
}

bool buf_append(struct buf *b, const void *data, size_t len)
{
    if (b->cap - b->end < len && b->start > 0) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    if (b->cap - b->end < len)
        return false;
    memcpy(b->data + b->end, data, len);
    b->end += len;
    return true;
}

int buf_reserve(struct buf *b, size_t cap)
{
    if (cap <= b->cap)
        return 0;
    char *grown = realloc(b->data, cap);
    if (!grown)
        return -1;
    b->data = grown;
    b->cap = cap;
    return 0;
}
