/*
 * st_writer.h: writing safetensors files from tests (header-only helper for
 * tests/unit/test_safetensors.c and test_weights.c).
 *
 * st_write() lays tensors out back to back in the order given, writes the
 * JSON header (padded with spaces to a multiple of 8, as the reference
 * writer does) and the data. st_write_raw() writes arbitrary bytes, for the
 * malformed-file cases; st_write_header() writes a length, the given header
 * text and `data_len` zero bytes.
 */
#ifndef CNNCC_TEST_ST_WRITER_H
#define CNNCC_TEST_ST_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *dtype; /* "F32", ... */
  int rank;
  int64_t shape[4];
  const void *data;
  size_t nbytes;
} TestTensor;

static inline void st_write_raw(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    abort();
  if (n && fwrite(bytes, 1, n, f) != n)
    abort();
  fclose(f);
}

static inline void st_put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

/* Length prefix + header text as given + data_len zero bytes. */
static inline void st_write_header(const char *path, const char *header, size_t data_len) {
  size_t h = strlen(header);
  unsigned char *buf = calloc(1, 8 + h + data_len);
  st_put_le64(buf, h);
  memcpy(buf + 8, header, h);
  st_write_raw(path, buf, 8 + h + data_len);
  free(buf);
}

/* A well-formed file; metadata is a JSON object text or NULL. */
static inline void st_write(const char *path, const TestTensor *t, int n, const char *metadata) {
  size_t cap = 4096 + 256 * (size_t)n, len = 0, off = 0;
  char *hdr = malloc(cap);
  len += snprintf(hdr + len, cap - len, "{");
  if (metadata)
    len += snprintf(hdr + len, cap - len, "\"__metadata__\":%s", metadata);
  for (int i = 0; i < n; i++) {
    len += snprintf(hdr + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                    (i || metadata) ? "," : "", t[i].name, t[i].dtype);
    for (int k = 0; k < t[i].rank; k++)
      len += snprintf(hdr + len, cap - len, "%s%lld", k ? "," : "", (long long)t[i].shape[k]);
    len += snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
    off += t[i].nbytes;
  }
  len += snprintf(hdr + len, cap - len, "}");
  while (len % 8)
    hdr[len++] = ' ';
  unsigned char *buf = malloc(8 + len + off + 1);
  st_put_le64(buf, len);
  memcpy(buf + 8, hdr, len);
  size_t pos = 8 + len;
  for (int i = 0; i < n; i++) {
    if (t[i].nbytes)
      memcpy(buf + pos, t[i].data, t[i].nbytes);
    pos += t[i].nbytes;
  }
  st_write_raw(path, buf, pos);
  free(buf);
  free(hdr);
}

/* A fresh temporary directory per test process. */
static inline char *st_tmpdir(void) {
  static char dir[64];
  if (!dir[0]) {
    strcpy(dir, "/tmp/cnncc-st-XXXXXX");
    if (!mkdtemp(dir))
      abort();
  }
  return dir;
}

static inline char *st_tmpfile(const char *name) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", st_tmpdir(), name);
  return path;
}

static inline void st_tmpdir_remove(void) {
  char cmd[128];
  if (st_tmpdir()[0]) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", st_tmpdir());
    if (system(cmd) != 0) {
      /* best effort */
    }
  }
}

#endif
