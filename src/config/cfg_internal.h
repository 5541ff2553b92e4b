/*
 * cfg_internal: what the files of src/config share and nothing else sees: the arena, the YAML
 * tree with positions, and the loader context. Not part of the module's contract.
 */
#ifndef GATEHOUSE_CONFIG_CFG_INTERNAL_H
#define GATEHOUSE_CONFIG_CFG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* ---- arena (cfg_arena.c): bump allocation, zeroed memory, freed all at once ------------------ */

struct cfg_arena *cfg_arena_new(void);
void cfg_arena_free(struct cfg_arena *ar);
void *cfg_arena_alloc(struct cfg_arena *ar, size_t size);
void *cfg_arena_array(struct cfg_arena *ar, size_t n, size_t size);
char *cfg_arena_strndup(struct cfg_arena *ar, const char *s, size_t len);
char *cfg_arena_strdup(struct cfg_arena *ar, const char *s);
__attribute__((format(printf, 2, 3))) char *cfg_arena_printf(struct cfg_arena *ar, const char *fmt,
                                                             ...);

/* Out-of-memory policy for the config module: loading is start-up work, so abort (STYLE.md). */
void *cfg_xmalloc(size_t size);
void *cfg_xrealloc(void *p, size_t n, size_t size);
char *cfg_xstrdup(const char *s);

/* ---- YAML tree (cfg_yaml.c) ----------------------------------------------------------------- */

enum cfg_ykind { CFG_Y_SCALAR, CFG_Y_SEQ, CFG_Y_MAP };

struct cfg_ypair;

/*
 * A YAML node with its position. Aliases are resolved by pointing at the anchored node, so a
 * node can have several parents; the tree lives in the loader's temporary arena.
 */
struct cfg_ynode {
    enum cfg_ykind kind;
    int line, col; /* 1-based */
    /* CFG_Y_SCALAR: the value, NUL-terminated, and whether it was quoted or a block scalar */
    const char *str;
    size_t len;
    bool plain;
    /* CFG_Y_SEQ: items; CFG_Y_MAP: pairs (keys are scalars, unique) */
    size_t n;
    struct cfg_ynode **items;
    struct cfg_ypair *pairs;
    size_t weight; /* nodes in the subtree with aliases expanded (bounds the walk) */
};

struct cfg_ypair {
    struct cfg_ynode *key;
    struct cfg_ynode *value;
};

/*
 * Parses text into a tree. On a YAML syntax error (or anything the loader refuses at this
 * level: several documents, an unknown alias, a duplicate key, too large a document) adds the
 * errors to errs and returns NULL; an empty document gives NULL with no error and *empty set.
 */
struct cfg_ynode *cfg_yaml_parse(struct cfg_arena *ar, const char *text, size_t len,
                                 const char *file, struct cfg_errors *errs, bool *empty);

/* A plain scalar written as nothing, "~" or "null". */
bool cfg_ynode_is_null(const struct cfg_ynode *n);

/* A short phrase naming the node's type for messages: "a string", "a list", "null", ... */
const char *cfg_ynode_describe(const struct cfg_ynode *n);

/* ---- values (cfg_value.c) ------------------------------------------------------------------- */

/*
 * Splits "host:port", "host", "[v6]:port", "[v6]" or a bare IPv6 literal. host_out receives
 * the host without brackets (NUL-terminated, capacity host_size). port_required: a missing port
 * is an error. Returns 0, or -1 with *why.
 */
int cfg_split_hostport(const char *s, char *host_out, size_t host_size, uint16_t *port,
                       enum cfg_addr_kind *kind, bool port_required, const char **why);

/* A DNS host name (letters, digits, '-', '_', dots between labels). */
bool cfg_is_dns_name(const char *s);

/* An object name: 1..80 characters of [A-Za-z0-9_.-], starting with a letter or digit. */
bool cfg_is_valid_name(const char *s);

/* ---- suggestions (cfg_errors.c) ------------------------------------------------------------- */

/* Optimal string alignment distance over the normalised forms (case, '-' and '_' ignored). */
size_t cfg_edit_distance(const char *a, const char *b);

/* ---- loader context (config_load.c, config_validate.c) --------------------------------------- */

struct cfg_loader {
    struct cfg *cfg;
    struct cfg_arena *ar;  /* the config's arena */
    struct cfg_arena *tmp; /* YAML tree and scratch, freed after the load */
    struct cfg_errors *errs;
    const char *file;       /* as given, for messages (lives in ar) */
    const char *dir;        /* base directory for relative paths (lives in ar) */
    size_t errors_at_start; /* errs->n_errors when this load began */
};

__attribute__((format(printf, 4, 5))) void cfg_err_pos(struct cfg_loader *ld,
                                                       const struct cfg_pos *pos, const char *key,
                                                       const char *fmt, ...);
__attribute__((format(printf, 4, 5))) void cfg_warn_pos(struct cfg_loader *ld,
                                                        const struct cfg_pos *pos, const char *key,
                                                        const char *fmt, ...);

/*
 * Resolves a path from the file against the config directory and checks that it names a
 * readable regular file; reports a problem at pos under key otherwise. Returns the resolved
 * path (in the config arena) either way.
 */
const char *cfg_check_input_file(struct cfg_loader *ld, const char *path, const struct cfg_pos *pos,
                                 const char *key);

/* Cross-object checks and reference resolution, after every section has been read. */
void cfg_validate(struct cfg_loader *ld);

#endif
