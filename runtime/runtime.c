/*
 * runtime.c: the host ABI (cnn.h) on top of the generated code (cnnrt.h).
 *
 * Linked into every .so cnncc emits; depends on libc, libm and libpthread
 * only, and exports nothing but the six cnn_* functions (the library is
 * built with hidden visibility; those are marked default).
 *
 * A cnn_model holds everything one model instance needs at run time, all
 * allocated by cnn_create so cnn_run never allocates: the weights (the blob
 * embedded in the .so, or a weights file mapped read-only), the activation
 * arena (64-byte aligned, arena_bytes from the memory plan), per-sample
 * pointer arrays and the thread pool. A weights file is checked before it
 * is used: magic, size, and the build id that ties it to the exact network
 * and layout it was packed for.
 *
 * cnn_run walks the batch one sample at a time, pointing the forward
 * function at that sample's slice of each input and output.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cnnrt.h"

#define CNN_EXPORT __attribute__((visibility("default")))

struct cnn_model {
  const unsigned char *blob; /* header + data */
  void *map;                 /* mmap'd weights file, or NULL */
  size_t map_len;
  const float *weights; /* blob data */
  float *arena;
  cnnrt_ctx *pool;
  const float **in_ptrs;
  float **out_ptrs;
  int64_t *in_numel, *out_numel;
  char err[512];
};

static void set_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t len, const char *fmt, ...) {
  if (!err || len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

static int64_t desc_numel(const cnn_tensor_desc *d) {
  int64_t n = 1;
  for (int i = 1; i < d->rank && i < 8; i++)
    n *= d->dims[i];
  return n;
}

CNN_EXPORT const cnn_info *cnn_get_info(void) { return &cnnrt_info; }

/* Checks a blob (header + data of `size` bytes); what names it in errors. */
static int check_blob(const unsigned char *blob, uint64_t size, const char *what,
                      char *err, size_t len) {
  CnnrtBlobHeader h;
  if (size < sizeof h) {
    set_err(err, len, "%s is too small to be a cnncc weights blob (%llu bytes)",
            what, (unsigned long long)size);
    return -1;
  }
  memcpy(&h, blob, sizeof h);
  if (memcmp(h.magic, CNNRT_BLOB_MAGIC, 8) != 0) {
    set_err(err, len, "%s is not a cnncc weights blob (bad magic)", what);
    return -1;
  }
  h.build_id[sizeof h.build_id - 1] = 0;
  if (strcmp(h.build_id, cnnrt_build_id) != 0) {
    set_err(err, len,
            "%s: weights blob was made for another network or build "
            "(blob build id %s, this model is %s)",
            what, h.build_id, cnnrt_build_id);
    return -1;
  }
  if (h.data_bytes != size - sizeof h) {
    set_err(err, len, "%s is truncated or has trailing data (%llu data bytes "
            "announced, %llu present)", what, (unsigned long long)h.data_bytes,
            (unsigned long long)(size - sizeof h));
    return -1;
  }
  if (h.data_bytes != cnnrt_info.weight_bytes) {
    set_err(err, len, "%s holds %llu bytes of weights, the model needs %llu",
            what, (unsigned long long)h.data_bytes,
            (unsigned long long)cnnrt_info.weight_bytes);
    return -1;
  }
  return 0;
}

static int map_weights(cnn_model *m, const char *path, char *err, size_t len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, len, "cannot open weights '%s': %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    set_err(err, len, "weights '%s' is not a regular file", path);
    close(fd);
    return -1;
  }
  if ((uint64_t)st.st_size < sizeof(CnnrtBlobHeader)) {
    set_err(err, len, "weights '%s' is too small to be a cnncc weights blob "
            "(%lld bytes)", path, (long long)st.st_size);
    close(fd);
    return -1;
  }
  void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    set_err(err, len, "cannot map weights '%s': %s", path, strerror(errno));
    return -1;
  }
  m->map = p;
  m->map_len = (size_t)st.st_size;
  char what[256];
  snprintf(what, sizeof what, "weights '%s'", path);
  if (check_blob(p, (uint64_t)st.st_size, what, err, len) != 0)
    return -1;
  m->blob = p;
  return 0;
}

CNN_EXPORT void cnn_destroy(cnn_model *m) {
  if (!m)
    return;
  cnnrt_pool_destroy(m->pool);
  if (m->map)
    munmap(m->map, m->map_len);
  free(m->arena);
  free(m->in_ptrs);
  free(m->out_ptrs);
  free(m->in_numel);
  free(m->out_numel);
  free(m);
}

CNN_EXPORT cnn_model *cnn_create(const char *weights_path, char *err,
                                 size_t err_len) {
  const cnn_info *info = &cnnrt_info;
  if (err && err_len)
    err[0] = 0;
  cnn_model *m = calloc(1, sizeof *m);
  if (!m) {
    set_err(err, err_len, "out of memory");
    return NULL;
  }
  if (weights_path) {
    if (map_weights(m, weights_path, err, err_len) != 0)
      goto fail;
  } else {
    if (cnnrt_blob_size == 0) {
      set_err(err, err_len,
              "model '%s' was compiled with external weights: pass the path "
              "of its .weights file to cnn_create", info->name);
      goto fail;
    }
    if (check_blob(cnnrt_blob, cnnrt_blob_size, "the embedded weights", err,
                   err_len) != 0)
      goto fail;
    m->blob = cnnrt_blob;
  }
  m->weights = (const float *)(m->blob + sizeof(CnnrtBlobHeader));

  size_t arena = ((size_t)info->arena_bytes + 63) & ~(size_t)63;
  if (arena == 0)
    arena = 64;
  void *a = NULL;
  if (posix_memalign(&a, 64, arena) != 0) {
    set_err(err, err_len, "cannot allocate the %zu-byte activation arena", arena);
    goto fail;
  }
  m->arena = a;
  size_t ni = (size_t)(info->num_inputs > 0 ? info->num_inputs : 1);
  size_t no = (size_t)(info->num_outputs > 0 ? info->num_outputs : 1);
  m->in_ptrs = calloc(ni, sizeof *m->in_ptrs);
  m->out_ptrs = calloc(no, sizeof *m->out_ptrs);
  m->in_numel = calloc(ni, sizeof *m->in_numel);
  m->out_numel = calloc(no, sizeof *m->out_numel);
  if (!m->in_ptrs || !m->out_ptrs || !m->in_numel || !m->out_numel) {
    set_err(err, err_len, "out of memory");
    goto fail;
  }
  for (int i = 0; i < info->num_inputs; i++)
    m->in_numel[i] = desc_numel(&info->inputs[i]);
  for (int i = 0; i < info->num_outputs; i++)
    m->out_numel[i] = desc_numel(&info->outputs[i]);
  m->pool = cnnrt_pool_create(cnnrt_default_threads());
  if (!m->pool) {
    set_err(err, err_len, "cannot create the thread pool");
    goto fail;
  }
  return m;

fail:
  cnn_destroy(m);
  return NULL;
}

CNN_EXPORT int cnn_run(cnn_model *m, int64_t batch, const float *const *inputs,
                       float *const *outputs) {
  if (!m)
    return CNN_ESTATE;
  const cnn_info *info = &cnnrt_info;
  if (batch < 1) {
    set_err(m->err, sizeof m->err, "cnn_run: batch must be at least 1, got %lld",
            (long long)batch);
    return CNN_EINVAL;
  }
  if ((info->num_inputs > 0 && !inputs) || (info->num_outputs > 0 && !outputs)) {
    set_err(m->err, sizeof m->err, "cnn_run: %s array is NULL",
            !inputs ? "inputs" : "outputs");
    return CNN_EINVAL;
  }
  for (int i = 0; i < info->num_inputs; i++)
    if (!inputs[i]) {
      set_err(m->err, sizeof m->err, "cnn_run: inputs[%d] ('%s') is NULL", i,
              info->inputs[i].name);
      return CNN_EINVAL;
    }
  for (int i = 0; i < info->num_outputs; i++)
    if (!outputs[i]) {
      set_err(m->err, sizeof m->err, "cnn_run: outputs[%d] ('%s') is NULL", i,
              info->outputs[i].name);
      return CNN_EINVAL;
    }
  m->err[0] = 0;
  for (int64_t s = 0; s < batch; s++) {
    for (int i = 0; i < info->num_inputs; i++)
      m->in_ptrs[i] = inputs[i] + s * m->in_numel[i];
    for (int i = 0; i < info->num_outputs; i++)
      m->out_ptrs[i] = outputs[i] + s * m->out_numel[i];
    cnnrt_forward(m->pool, m->weights, m->arena, m->in_ptrs, m->out_ptrs);
  }
  return CNN_OK;
}

CNN_EXPORT int cnn_set_num_threads(cnn_model *m, int n) {
  if (!m)
    return CNN_ESTATE;
  if (n < 0 || n > 1024) {
    set_err(m->err, sizeof m->err,
            "cnn_set_num_threads: %d threads (use 0 for one per core, or 1..1024)", n);
    return CNN_EINVAL;
  }
  if (n == 0)
    n = cnnrt_cores();
  if (n == cnnrt_pool_threads(m->pool))
    return CNN_OK;
  cnnrt_ctx *p = cnnrt_pool_create(n);
  if (!p) {
    set_err(m->err, sizeof m->err, "cnn_set_num_threads: out of memory");
    return CNN_ENOMEM;
  }
  cnnrt_pool_destroy(m->pool);
  m->pool = p;
  return CNN_OK;
}

CNN_EXPORT const char *cnn_last_error(const cnn_model *m) {
  if (!m)
    return "no model (cnn_create failed or was not called)";
  return m->err;
}
