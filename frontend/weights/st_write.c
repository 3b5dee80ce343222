/*
 * st_write.c: writing safetensors files (the weights of --emit=spec).
 *
 * The format, as safetensors.c reads it: an 8-byte little-endian length N,
 * N bytes of a JSON object, then the data. The object maps each tensor's
 * name to {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
 * byte offsets into the data; the tensors lie back to back in the order
 * given, with no gap between them (the format allows none). The JSON is
 * padded with spaces so that the data starts 8-byte aligned, as the
 * reference writer does: every F32 tensor is then 4-byte aligned in a
 * mapped file.
 *
 * A file appears whole or not at all: it is written to a temporary file
 * beside `path` (same directory, so the rename is atomic) and renamed over
 * it at the end; on any error the temporary is removed.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weights_internal.h"
#include "../../support/files.h"

#define ST_WRITE_MAX_HEADER ((size_t)100 << 20) /* what safetensors.c accepts */
#define CHUNK_FLOATS ((size_t)1 << 20)          /* 4 MB between progress reports */

__attribute__((format(printf, 3, 4))) static bool fail(char *err, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
  return false;
}

/* The JSON header of t[0..n), padded so that 8 + its length is a multiple
   of 8 (malloc'd, its length in *len); NULL with a message in err. */
static char *make_header(const StWriteTensor *t, int n, size_t *len, uint64_t *data_bytes,
                         char *err, size_t errlen) {
  json_t *root = json_object();
  uint64_t off = 0;
  bool ok = true;
  for (int i = 0; i < n && ok; i++) {
    uint64_t numel = 1;
    bool dims_ok = t[i].rank >= 0 && t[i].rank <= 8;
    for (int k = 0; dims_ok && k < t[i].rank; k++)
      dims_ok = t[i].shape[k] >= 0 &&
                (t[i].shape[k] == 0 || numel <= (UINT64_MAX >> 8) / (uint64_t)t[i].shape[k]);
    for (int k = 0; dims_ok && k < t[i].rank; k++)
      numel *= (uint64_t)t[i].shape[k];
    if (!t[i].name || !*t[i].name || !strcmp(t[i].name, "__metadata__"))
      ok = fail(err, errlen, "tensor %d cannot be written: its name '%s' is empty or reserved", i,
                t[i].name ? t[i].name : "");
    else if (!dims_ok)
      ok = fail(err, errlen, "tensor '%s' has an invalid shape", t[i].name);
    else if (numel && !t[i].data)
      ok = fail(err, errlen, "tensor '%s' has no values", t[i].name);
    else if (json_object_get(root, t[i].name))
      ok = fail(err, errlen, "two tensors are named '%s'", t[i].name);
    if (!ok)
      break;
    json_t *shape = json_array();
    for (int k = 0; k < t[i].rank; k++)
      json_array_append_new(shape, json_integer((json_int_t)t[i].shape[k]));
    json_t *entry = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + 4 * numel));
    if (!entry || json_object_set_new(root, t[i].name, entry) != 0)
      ok = fail(err, errlen, "tensor '%s' cannot be written: its name is not UTF-8", t[i].name);
    off += 4 * numel;
  }
  char *text = ok ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(root);
  if (!ok)
    return NULL;
  CHECK(text, "json_dumps failed");
  size_t tl = strlen(text), padded = tl + (8 - tl % 8) % 8;
  if (padded > ST_WRITE_MAX_HEADER) {
    free(text);
    fail(err, errlen, "the safetensors header would be larger than 100 MB");
    return NULL;
  }
  char *hdr = xmalloc(padded + 1);
  memcpy(hdr, text, tl);
  memset(hdr + tl, ' ', padded - tl);
  hdr[padded] = 0;
  free(text);
  *len = padded;
  *data_bytes = off;
  return hdr;
}

/* numel floats of x as little-endian F32. */
static bool write_floats(FILE *f, const float *x, size_t numel) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return fwrite(x, sizeof(float), numel, f) == numel;
#else
  for (size_t i = 0; i < numel; i++) {
    uint32_t b;
    memcpy(&b, &x[i], 4);
    unsigned char le[4] = {b & 255, (b >> 8) & 255, (b >> 16) & 255, b >> 24};
    if (fwrite(le, 1, 4, f) != 4)
      return false;
  }
  return true;
#endif
}

/* Header and data into f; false on a write error (errno set). */
static bool write_body(FILE *f, const StWriteTensor *t, int n, const char *hdr, size_t len,
                       uint64_t total, const ProgressHook *progress) {
  unsigned char le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (unsigned char)((uint64_t)len >> (8 * i));
  if (fwrite(le, 1, 8, f) != 8 || fwrite(hdr, 1, len, f) != len)
    return false;
  uint64_t done = 0;
  for (int i = 0; i < n; i++) {
    size_t numel = 1;
    for (int k = 0; k < t[i].rank; k++)
      numel *= (size_t)t[i].shape[k];
    for (size_t at = 0; at < numel; at += CHUNK_FLOATS) {
      size_t m = numel - at < CHUNK_FLOATS ? numel - at : CHUNK_FLOATS;
      if (!write_floats(f, t[i].data + at, m))
        return false;
      done += 4 * (uint64_t)m;
      progress_report(progress, "writing weights", (double)done, (double)total, "B");
    }
  }
  progress_report(progress, "writing weights", (double)total, (double)total, "B");
  return fflush(f) == 0 && !ferror(f);
}

bool st_write_f32(const char *path, const StWriteTensor *t, int n, const ProgressHook *progress,
                  char *err, size_t errlen) {
  size_t len;
  uint64_t total;
  char *hdr = make_header(t, n, &len, &total, err, errlen);
  if (!hdr)
    return false;
  char *tmp = xasprintf("%s.tmpXXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    fail(err, errlen, "cannot create a file beside '%s': %s", path, strerror(errno));
    free(tmp);
    free(hdr);
    return false;
  }
  /* mkstemp makes the file 0600; give it the mode a plain fopen would */
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  FILE *f = fdopen(fd, "wb");
  bool ok = f && write_body(f, t, n, hdr, len, total, progress);
  int saved = ok ? 0 : errno;
  if (!f)
    close(fd);
  else if (fclose(f) != 0 && ok)
    ok = false, saved = errno;
  if (ok && file_publish(tmp, path) != 0)
    ok = false, saved = errno;
  if (!ok) {
    fail(err, errlen, "cannot write '%s': %s", path, strerror(saved ? saved : EIO));
    unlink(tmp);
  }
  free(tmp);
  free(hdr);
  return ok;
}

bool weights_save(const char *path, const NamedParam *params, int n, Diag *d,
                  const ProgressHook *progress) {
  StWriteTensor *t = xcalloc((size_t)(n ? n : 1), sizeof *t);
  for (int i = 0; i < n; i++) {
    const Param *p = params[i].param;
    CHECK(p->data || param_numel(p) == 0, "parameter '%s' has no values to write", p->name);
    t[i] = (StWriteTensor){params[i].name, p->rank, p->dims, p->data};
  }
  char err[512];
  bool ok = st_write_f32(path, t, n, progress, err, sizeof err);
  if (!ok)
    diag_plain(d, DIAG_ERROR, "%s", err);
  free(t);
  return ok;
}
