/*
 * arena.c: the compiler's memory. Everything a Graph owns (nodes, names,
 * parameters, weight data) comes from one Arena and is freed at once with
 * it, as QBE frees a function's pools. Blocks grow geometrically; requests
 * larger than a quarter of the block size get a block of their own, so
 * hundreds of MB of weights do not waste space.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Block {
  struct Block *next;
  size_t size, used;
  _Alignas(64) unsigned char data[];
} Block;

struct Arena {
  Block *head;
  size_t next_size;
};

Arena *arena_new(void) {
  Arena *a = xcalloc(1, sizeof *a);
  a->next_size = 64 * 1024;
  return a;
}

void arena_free(Arena *a) {
  if (!a)
    return;
  for (Block *b = a->head, *n; b; b = n) {
    n = b->next;
    free(b);
  }
  free(a);
}

static Block *new_block(size_t size) {
  Block *b = xcalloc(1, sizeof(Block) + size);
  b->size = size;
  return b;
}

void *arena_alloc_aligned(Arena *a, size_t n, size_t align) {
  CHECK(align && (align & (align - 1)) == 0 && align <= 64, "align %zu", align);
  if (n == 0)
    n = 1;
  if (n > a->next_size / 4) {
    /* A dedicated block, linked behind the head so the head keeps serving
       small requests. */
    Block *b = new_block(n + align);
    b->used = b->size;
    if (a->head) {
      b->next = a->head->next;
      a->head->next = b;
    } else {
      a->head = b;
    }
    uintptr_t p = ((uintptr_t)b->data + align - 1) & ~(uintptr_t)(align - 1);
    return (void *)p;
  }
  for (;;) {
    Block *b = a->head;
    if (b) {
      uintptr_t base = (uintptr_t)b->data;
      uintptr_t p = (base + b->used + align - 1) & ~(uintptr_t)(align - 1);
      if (p + n <= base + b->size) {
        b->used = p + n - base;
        return (void *)p; /* calloc'd block: already zero */
      }
    }
    Block *nb = new_block(a->next_size);
    if (a->next_size < 16u * 1024 * 1024)
      a->next_size *= 2;
    nb->next = a->head;
    a->head = nb;
  }
}

void *arena_alloc(Arena *a, size_t n) { return arena_alloc_aligned(a, n, 16); }

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc_aligned(a, n + 1, 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc_aligned(a, (size_t)n + 1, 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void ptrvec_push(Arena *a, PtrVec *v, void *p) {
  if (v->len == v->cap) {
    int cap = v->cap ? v->cap * 2 : 16;
    void **items = arena_alloc(a, sizeof(void *) * (size_t)cap);
    if (v->len)
      memcpy(items, v->items, sizeof(void *) * (size_t)v->len);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->len++] = p;
}
