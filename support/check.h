/*
 * check.h: invariants that stay checked in every build.
 *
 * assert() disappears with NDEBUG, so a broken invariant in a release build
 * would run on into undefined behaviour or a silently wrong .so. CHECK does
 * not: when its condition is false it prints
 *
 *     cnncc: internal error: ir/graph.c:88: op >= 0 && op < OP_COUNT_ (unknown op 42)
 *
 * and exits with status 2, the driver's code for an internal error. Use it
 * for what can only fail through a bug in cnncc, never for user input
 * (that goes through a Diag and exit 1).
 *
 * The x-allocators below never return NULL: when memory runs out they print
 * "cnncc: error: out of memory (N bytes)" and exit with status 1 (the
 * input asked for more than this machine has; not a bug, not an abort).
 * Compiler code uses them for memory it cannot do without; the runtime
 * (runtime/, linked into every .so) never does: it reports CNN_ENOMEM.
 */
#ifndef CNNCC_SUPPORT_CHECK_H
#define CNNCC_SUPPORT_CHECK_H

#include <stddef.h>

/* Reports the failed check and exits with status 2. fmt may be NULL. */
_Noreturn void check_failed(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* CHECK(cond) or CHECK(cond, "printf format", args...) */
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      check_failed(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                                     \
  } while (0)

/* Exits with status 1 after "out of memory (bytes bytes)". */
_Noreturn void out_of_memory(size_t bytes);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
