/*
 * model.c: an ONNX file, read and decoded; its tensors as constants.
 *
 * The file is mapped and decoded by protobuf-c with the code generated from
 * Debian's onnx.proto at build time. protobuf-c has no nesting limit, and a
 * hostile file can nest messages (graphs in attributes in nodes in graphs)
 * deep enough to overflow the stack; so before decoding, the wire format is
 * walked with the generated descriptors (which field is a message) to check
 * that no message nests deeper than OX_MAX_NESTING and that every length and
 * key is well formed. That walk reads no values: decoding stays protobuf-c's.
 *
 * Tensors: float32 and int64 (int32 and bool widened to int64, double
 * narrowed to float32); data from raw_data (little-endian, unaligned), the
 * typed fields, or external data (data_location EXTERNAL: `location`
 * relative to the model's folder, `offset`, `length`), mapped and copied one
 * tensor at a time, so a model whose weights exceed memory-mapped file
 * limits is never read whole. A location that leaves the model's folder
 * (absolute, or through "..", or a symbolic link out of it) is an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx_internal.h"

#define OX_MAX_NESTING 64

struct OxModel {
  unsigned char *map;
  size_t size;
  bool mapped; /* map is ours (mmap of the file), else the caller's bytes */
  char *dir;   /* the model's folder (realpath), for external data; NULL: a
                  model in memory, which has no external data */
  Onnx__ModelProto *proto;
};

const Onnx__ModelProto *ox_model_proto(const OxModel *m) { return m->proto; }

/* ------------------------------------------------------ the wire format walk */

static bool varint(const unsigned char **p, const unsigned char *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end)
      return false;
    unsigned char b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      return true;
  }
  return false;
}

static const ProtobufCFieldDescriptor *field_of(const ProtobufCMessageDescriptor *d,
                                                uint32_t number) {
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].id == number)
      return &d->fields[i];
  return NULL;
}

/* Whether buf is well formed as message d down to OX_MAX_NESTING levels. */
static bool wire_ok(const ProtobufCMessageDescriptor *d, const unsigned char *p,
                    const unsigned char *end, int depth) {
  if (depth > OX_MAX_NESTING)
    return false;
  while (p < end) {
    uint64_t key, len;
    if (!varint(&p, end, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
      return false;
    switch (key & 7) {
    case 0:
      if (!varint(&p, end, &len))
        return false;
      break;
    case 1:
      if (end - p < 8)
        return false;
      p += 8;
      break;
    case 5:
      if (end - p < 4)
        return false;
      p += 4;
      break;
    case 2: {
      if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
        return false;
      const ProtobufCFieldDescriptor *f = field_of(d, (uint32_t)(key >> 3));
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && !wire_ok(f->descriptor, p, p + len, depth + 1))
        return false;
      p += len;
      break;
    }
    default: /* groups (3, 4) are not used by onnx.proto */
      return false;
    }
  }
  return true;
}

/* ---------------------------------------------------------------- the file */

static bool read_error(OxCtx *cx, const char *fmt, const char *detail) {
  diag_report(cx->d, DIAG_ERROR, (SrcLoc){cx->path, 0, 0}, 0, fmt, detail);
  return false;
}

/* Decodes the bytes of m (m->map, m->size) into m->proto. */
static bool decode(OxCtx *cx, OxModel *m) {
  if (!wire_ok(&onnx__model_proto__descriptor, m->map, m->map + m->size, 0) ||
      !(m->proto = onnx__model_proto__unpack(NULL, m->size, m->map)))
    return read_error(cx,
                      "not a valid ONNX model: the protobuf data is malformed or truncated%s "
                      "(a file cut short, or not an ONNX model at all)",
                      "");
  if (!m->proto->graph)
    return read_error(cx, "the model has no graph%s", "");
  return true;
}

OxModel *ox_model_read(OxCtx *cx, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    diag_plain(cx->d, DIAG_ERROR, "cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    diag_plain(cx->d, DIAG_ERROR, "cannot read '%s': not a regular file", path);
    close(fd);
    return NULL;
  }
  if (st.st_size == 0 || st.st_size > INT32_MAX) {
    close(fd);
    read_error(cx,
               st.st_size ? "the model is larger than 2 GB, which protobuf cannot decode%s; "
                            "export its weights as external data "
                            "(onnx.save_model(..., save_as_external_data=True))"
                          : "the file is empty%s",
               "");
    return NULL;
  }
  OxModel *m = xcalloc(1, sizeof *m);
  m->size = (size_t)st.st_size;
  m->map = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
  m->mapped = m->map != MAP_FAILED;
  close(fd);
  if (!m->mapped) {
    diag_plain(cx->d, DIAG_ERROR, "cannot map '%s': %s", path, strerror(errno));
    free(m);
    return NULL;
  }
  char *copy = xstrdup(path);
  char *slash = strrchr(copy, '/');
  if (slash)
    slash[slash == copy ? 1 : 0] = 0;
  m->dir = realpath(slash ? copy : ".", NULL);
  free(copy);
  if (!m->dir)
    m->dir = xstrdup(".");
  if (!decode(cx, m)) {
    ox_model_free(m);
    return NULL;
  }
  return m;
}

OxModel *ox_model_from_memory(OxCtx *cx, const void *bytes, size_t size) {
  if (size == 0 || size > INT32_MAX) {
    read_error(cx, "the model is empty or larger than 2 GB%s", "");
    return NULL;
  }
  OxModel *m = xcalloc(1, sizeof *m);
  m->map = (unsigned char *)bytes;
  m->size = size;
  if (!decode(cx, m)) {
    ox_model_free(m);
    return NULL;
  }
  return m;
}

void ox_model_free(OxModel *m) {
  if (!m)
    return;
  if (m->proto)
    onnx__model_proto__free_unpacked(m->proto, NULL);
  if (m->mapped)
    munmap(m->map, m->size);
  free(m->dir);
  free(m);
}

int64_t ox_model_opset(OxCtx *cx, const OxModel *m) {
  const Onnx__ModelProto *p = m->proto;
  int64_t v = -1;
  for (size_t i = 0; i < p->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = p->opset_import[i];
    const char *dom = o->domain ? o->domain : "";
    if (!*dom || strcmp(dom, "ai.onnx") == 0)
      v = o->has_version ? o->version : -1;
  }
  if (v < 0) {
    ox_error(cx, "the model imports no opset of the default ONNX domain");
    return -1;
  }
  if (v < OX_MIN_OPSET || v > OX_MAX_OPSET) {
    ox_error(cx,
             "opset %lld of the default domain is not supported: cnncc reads opsets up to %d "
             "(torch.onnx.export(..., opset_version=%d))",
             (long long)v, OX_MAX_OPSET, OX_MAX_OPSET);
    return -1;
  }
  return v;
}

/* ------------------------------------------------------------------ tensors */

static const char *dtype_name(int32_t t) {
  static const char *const names[] = {"undefined",  "float32", "uint8",  "int8",   "uint16",
                                      "int16",      "int32",   "int64",  "string", "bool",
                                      "float16",    "float64", "uint32", "uint64", "complex64",
                                      "complex128", "bfloat16"};
  return t >= 0 && t < (int32_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

/* Bytes per element of the stored type, for raw and external data. */
static int item_size(int32_t t) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    return 4;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    return 8;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    return 1;
  default:
    return 0;
  }
}

static uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; k--)
    v = v << 8 | p[k];
  return v;
}

/* Element k of little-endian data of type t into c. */
static void store_raw(OxConst *c, int32_t t, const unsigned char *p, int64_t k) {
  switch (t) {
  case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
    uint32_t b = (uint32_t)le(p, 4);
    memcpy(&c->f[k], &b, 4);
    break;
  }
  case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
    uint64_t b = le(p, 8);
    double d;
    memcpy(&d, &b, 8);
    c->f[k] = (float)d;
    break;
  }
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    c->i[k] = (int32_t)(uint32_t)le(p, 4);
    break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    c->i[k] = (int64_t)le(p, 8);
    break;
  case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
    c->i[k] = p[0] != 0;
    break;
  }
}

/* The external data of t (bytes long), mapped: checks the location stays
   inside the model's folder and the range inside the file. The data start
   at *p; munmap(*map, *span) when done (span 0: nothing mapped). */
static bool external(OxCtx *cx, const Onnx__TensorProto *t, const char *what, int64_t bytes,
                     const unsigned char **p, void **map_out, size_t *span_out) {
  const char *loc = NULL;
  int64_t offset = 0, length = -1;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    if (!e->key || !e->value)
      continue;
    char *end;
    if (strcmp(e->key, "location") == 0)
      loc = e->value;
    else if (strcmp(e->key, "offset") == 0)
      offset = strtoll(e->value, &end, 10);
    else if (strcmp(e->key, "length") == 0)
      length = strtoll(e->value, &end, 10);
  }
  if (!loc || !*loc)
    return ox_error(cx, "%s: external data without a location", what);
  if (!cx->model->dir)
    return ox_error(cx, "%s: external data, but the model was not read from a file", what);
  if (loc[0] == '/')
    return ox_error(cx,
                    "%s: external data location '%s' is an absolute path; it must be relative "
                    "to the model's folder",
                    what, loc);
  char *full = xasprintf("%s/%s", cx->model->dir, loc);
  char *real = realpath(full, NULL);
  free(full);
  size_t dl = strlen(cx->model->dir);
  if (!real) {
    ox_error(cx, "%s: cannot open its external data '%s': %s", what, loc, strerror(errno));
    return false;
  }
  if (strncmp(real, cx->model->dir, dl) != 0 || (real[dl] != '/' && dl > 1)) {
    free(real);
    return ox_error(cx, "%s: external data location '%s' leaves the model's folder", what, loc);
  }
  int fd = open(real, O_RDONLY | O_CLOEXEC);
  free(real);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0)
      close(fd);
    return ox_error(cx, "%s: cannot open its external data '%s': %s", what, loc, strerror(errno));
  }
  if (length < 0)
    length = bytes;
  if (offset < 0 || length != bytes || offset > st.st_size || st.st_size - offset < length) {
    close(fd);
    return ox_error(cx,
                    "%s: external data '%s' [%lld, +%lld) does not hold the %lld bytes of the "
                    "tensor (the file has %lld)",
                    what, loc, (long long)offset, (long long)length, (long long)bytes,
                    (long long)st.st_size);
  }
  long page = sysconf(_SC_PAGESIZE);
  int64_t start = offset / page * page;
  size_t span = (size_t)(offset - start + length);
  void *map = span ? mmap(NULL, span, PROT_READ, MAP_PRIVATE, fd, start) : NULL;
  close(fd);
  if (span && map == MAP_FAILED)
    return ox_error(cx, "%s: cannot map its external data '%s': %s", what, loc, strerror(errno));
  *p = (const unsigned char *)map + (offset - start);
  *map_out = map;
  *span_out = span;
  return true;
}

bool ox_tensor_const(OxCtx *cx, const Onnx__TensorProto *t, const char *what, OxConst *out) {
  int32_t dt = t->has_data_type ? t->data_type : 0;
  if (!item_size(dt))
    return ox_error(cx, "%s is a %s tensor; cnncc reads float32 weights (and int64 shapes)", what,
                    dtype_name(dt));
  if (t->segment)
    return ox_error(cx, "%s is stored in segments, which cnncc does not read", what);
  if (t->n_dims > OX_MAX_RANK)
    return ox_error(cx, "%s has rank %zu (at most %d)", what, t->n_dims, OX_MAX_RANK);
  int64_t n = 1;
  for (size_t k = 0; k < t->n_dims; k++)
    if (t->dims[k] < 0 || __builtin_mul_overflow(n, t->dims[k], &n) || n > ((int64_t)1 << 36))
      return ox_error(cx, "%s has an impossible shape", what);
  int sz = item_size(dt);
  /* Where the values are, checked against the shape before anything is
     allocated for them. */
  const unsigned char *raw = NULL;
  void *map = NULL;
  size_t span = 0;
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    if (!external(cx, t, what, n * sz, &raw, &map, &span))
      return false;
  } else if (t->has_raw_data) {
    if (t->raw_data.len != (size_t)(n * sz))
      return ox_error(cx, "%s: raw_data holds %zu bytes, its shape needs %lld", what,
                      t->raw_data.len, (long long)(n * sz));
    raw = t->raw_data.data;
  } else {
    size_t have = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT    ? t->n_float_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? t->n_double_data
                  : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64  ? t->n_int64_data
                                                                : t->n_int32_data;
    if (have != (size_t)n)
      return ox_error(cx, "%s holds %zu values, its shape needs %lld", what, have, (long long)n);
  }
  bool is_float =
      dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
  ox_const_alloc(cx, out, is_float ? OX_F32 : OX_I64, (int)t->n_dims, t->dims);
  for (int64_t k = 0; k < n; k++) {
    if (raw) {
      store_raw(out, dt, raw + k * sz, k);
      continue;
    }
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
      out->f[k] = t->float_data[k];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
      out->f[k] = (float)t->double_data[k];
      break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
      out->i[k] = t->int64_data[k];
      break;
    default: /* int32, bool */
      out->i[k] = t->int32_data[k];
      break;
    }
  }
  if (span)
    munmap(map, span);
  return true;
}
