/*
 * check.c: the failure path of CHECK and the x-allocators (check.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

void check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
  fflush(stdout);
  fprintf(stderr, "cnncc: internal error: %s:%d: %s", file, line, cond);
  if (fmt && *fmt) {
    va_list ap;
    va_start(ap, fmt);
    fputs(" (", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(")", stderr);
    va_end(ap);
  }
  fputs("\n", stderr);
  exit(2);
}

void out_of_memory(size_t bytes) {
  fflush(stdout);
  fprintf(stderr, "cnncc: error: out of memory (%zu bytes)\n", bytes);
  exit(1);
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p)
    out_of_memory(n);
  return p;
}

void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    out_of_memory(n * size);
  return p;
}

void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    out_of_memory(n);
  return q;
}

char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    out_of_memory(0);
  return s;
}
