/*
 * safetensors.c: a strict reader of the safetensors format.
 *
 * The format (huggingface/safetensors) is:
 *
 *   u64 little-endian N | N bytes of JSON | data area (the rest of the file)
 *
 * The JSON is an object. Every key except "__metadata__" names a tensor:
 *
 *   "conv1.weight": {"dtype": "F32", "shape": [64, 3, 7, 7],
 *                    "data_offsets": [BEGIN, END]}
 *
 * with BEGIN/END byte offsets relative to the start of the data area.
 * "__metadata__", if present, maps strings to strings and is ignored here.
 *
 * The file is mmap()ed read-only and StTensor.data points into the mapping, so
 * opening a 500 MB VGG-16 costs no copy; st_to_f32() converts when the caller
 * binds a parameter (st_to_f32_range() a piece of it, so that weights_load can
 * report its progress while the file is read). Everything in the header is
 * validated before anything is returned, because the header is untrusted
 * input: a short file, a header length past the end of the file, malformed
 * JSON, a non-object root, missing or mistyped fields, unknown dtypes,
 * negative or overflowing shapes, offsets outside the data area, a byte range
 * that does not match dtype x shape, duplicate names and overlapping byte
 * ranges are all errors, and the message names the tensor at fault. Known
 * dtypes that cnncc cannot convert (I64, U8, BOOL, ...) are accepted here as
 * ST_OTHER; the caller decides (weights_load reports them against the
 * parameter that wanted them). Gaps between tensors and trailing bytes are
 * tolerated: they are harmless, and no data is read from them.
 *
 * Messages written to `err` do not repeat the file name: callers report them
 * at the file (diag_report with a line-0 location).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "weights_internal.h"

/* The reference implementation refuses headers above 100 MB; so do we. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
#define ST_MAX_RANK 8

struct StFile {
  void *map;         /* whole file, read-only; NULL for an empty mapping or
                        when the bytes belong to the caller (st_open_mem) */
  size_t size;       /* file size in bytes */
  StTensor *tensors; /* in header order */
  int count;
  int *by_name; /* indices into tensors, sorted by name (for st_find) */
};

/* ------------------------------------------------------------ dtypes */

typedef struct {
  const char *name;
  StDtype dtype;
  int itemsize;
} DtypeInfo;

/* Every dtype the safetensors format defines. Only the first four convert. */
static const DtypeInfo dtypes[] = {
    {"F32", ST_F32, 4},    {"F64", ST_F64, 8},       {"F16", ST_F16, 2},       {"BF16", ST_BF16, 2},
    {"I8", ST_OTHER, 1},   {"U8", ST_OTHER, 1},      {"I16", ST_OTHER, 2},     {"U16", ST_OTHER, 2},
    {"I32", ST_OTHER, 4},  {"U32", ST_OTHER, 4},     {"I64", ST_OTHER, 8},     {"U64", ST_OTHER, 8},
    {"BOOL", ST_OTHER, 1}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

static const DtypeInfo *dtype_lookup(const char *name) {
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
    if (strcmp(dtypes[i].name, name) == 0)
      return &dtypes[i];
  return NULL;
}

/* ------------------------------------------------------------ helpers */

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static uint64_t read_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

void st_close(StFile *f) {
  if (!f)
    return;
  if (f->map)
    munmap(f->map, f->size);
  for (int i = 0; i < f->count; i++)
    free((char *)f->tensors[i].name);
  free(f->tensors);
  free(f->by_name);
  free(f);
}

/* qsort contexts: qsort has no user pointer in C17, so sort index pairs. */
typedef struct {
  const StTensor *t;
  int index;
} TRef;

static int cmp_by_name(const void *a, const void *b) {
  return strcmp(((const TRef *)a)->t->name, ((const TRef *)b)->t->name);
}

static int cmp_by_offset(const void *a, const void *b) {
  const StTensor *x = ((const TRef *)a)->t, *y = ((const TRef *)b)->t;
  const unsigned char *px = x->data, *py = y->data;
  if (px != py)
    return px < py ? -1 : 1;
  return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Validate one header entry and fill t (name not set). `data` is the start of
   the data area, `data_size` its length. */
static bool parse_entry(const char *name, json_t *entry, const unsigned char *data,
                        uint64_t data_size, StTensor *t, char *err, size_t errlen) {
  if (!json_is_object(entry)) {
    fail(err, errlen, "tensor '%s': header entry is not an object", name);
    return false;
  }
  const char *key;
  json_t *val;
  json_object_foreach(entry, key, val) {
    if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets")) {
      fail(err, errlen,
           "tensor '%s': unknown key '%s' (expected dtype, shape, "
           "data_offsets)",
           name, key);
      return false;
    }
  }

  json_t *jd = json_object_get(entry, "dtype");
  json_t *js = json_object_get(entry, "shape");
  json_t *jo = json_object_get(entry, "data_offsets");
  if (!jd || !js || !jo) {
    fail(err, errlen, "tensor '%s': missing '%s'", name,
         !jd   ? "dtype"
         : !js ? "shape"
               : "data_offsets");
    return false;
  }

  if (!json_is_string(jd)) {
    fail(err, errlen, "tensor '%s': 'dtype' must be a string", name);
    return false;
  }
  const DtypeInfo *di = dtype_lookup(json_string_value(jd));
  if (!di) {
    fail(err, errlen, "tensor '%s': unknown dtype '%s'", name, json_string_value(jd));
    return false;
  }
  t->dtype = di->dtype;
  t->dtype_name = di->name; /* static string, outlives the JSON */

  if (!json_is_array(js)) {
    fail(err, errlen, "tensor '%s': 'shape' must be a list of integers", name);
    return false;
  }
  size_t rank = json_array_size(js);
  if (rank > ST_MAX_RANK) {
    fail(err, errlen, "tensor '%s': rank %zu is more than %d", name, rank, ST_MAX_RANK);
    return false;
  }
  t->rank = (int)rank;
  uint64_t numel = 1;
  for (size_t i = 0; i < rank; i++) {
    json_t *d = json_array_get(js, i);
    if (!json_is_integer(d)) {
      fail(err, errlen, "tensor '%s': shape[%zu] is not an integer", name, i);
      return false;
    }
    json_int_t v = json_integer_value(d);
    if (v < 0) {
      fail(err, errlen, "tensor '%s': shape[%zu] is negative (%lld)", name, i, (long long)v);
      return false;
    }
    t->shape[i] = v;
    if (v != 0 && numel > (UINT64_MAX / 8) / (uint64_t)v) {
      fail(err, errlen, "tensor '%s': shape overflows (too many elements)", name);
      return false;
    }
    numel *= (uint64_t)v;
  }
  uint64_t want = numel * (uint64_t)di->itemsize;

  if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
      !json_is_integer(json_array_get(jo, 1))) {
    fail(err, errlen, "tensor '%s': 'data_offsets' must be a list of two integers", name);
    return false;
  }
  json_int_t b = json_integer_value(json_array_get(jo, 0));
  json_int_t e = json_integer_value(json_array_get(jo, 1));
  if (b < 0 || e < 0 || b > e) {
    fail(err, errlen, "tensor '%s': bad data_offsets [%lld, %lld]", name, (long long)b,
         (long long)e);
    return false;
  }
  if ((uint64_t)e > data_size) {
    fail(err, errlen,
         "tensor '%s': data_offsets [%lld, %lld] run past the end of the data "
         "area (%llu bytes)",
         name, (long long)b, (long long)e, (unsigned long long)data_size);
    return false;
  }
  if ((uint64_t)(e - b) != want) {
    char sh[160];
    int n = snprintf(sh, sizeof sh, "[");
    for (int i = 0; i < t->rank && n < (int)sizeof sh - 24; i++)
      n += snprintf(sh + n, sizeof sh - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    snprintf(sh + n, sizeof sh - n, "]");
    fail(err, errlen,
         "tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, but %s %s "
         "needs %llu",
         name, (long long)b, (long long)e, (long long)(e - b), t->dtype_name, sh,
         (unsigned long long)want);
    return false;
  }
  t->data = data + b;
  t->nbytes = want;
  return true;
}

static bool check_metadata(json_t *meta, char *err, size_t errlen) {
  if (!json_is_object(meta)) {
    fail(err, errlen, "'__metadata__' must be an object of strings");
    return false;
  }
  const char *key;
  json_t *val;
  json_object_foreach(meta, key, val) {
    if (!json_is_string(val)) {
      fail(err, errlen, "'__metadata__' entry '%s' is not a string", key);
      return false;
    }
  }
  return true;
}

/* Header (already parsed) -> f->tensors, then the cross-tensor checks. */
static bool parse_header(StFile *f, json_t *root, const unsigned char *data, uint64_t data_size,
                         char *err, size_t errlen) {
  if (!json_is_object(root)) {
    fail(err, errlen, "header is not a JSON object");
    return false;
  }
  size_t n = json_object_size(root);
  f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
  if (!f->tensors) {
    fail(err, errlen, "out of memory");
    return false;
  }
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (strcmp(key, "__metadata__") == 0) {
      if (!check_metadata(val, err, errlen))
        return false;
      continue;
    }
    StTensor *t = &f->tensors[f->count];
    if (!parse_entry(key, val, data, data_size, t, err, errlen))
      return false;
    t->name = strdup(key);
    if (!t->name) {
      fail(err, errlen, "out of memory");
      return false;
    }
    f->count++;
  }

  TRef *refs = malloc((f->count ? f->count : 1) * sizeof *refs);
  f->by_name = malloc((f->count ? f->count : 1) * sizeof *f->by_name);
  if (!refs || !f->by_name) {
    free(refs);
    fail(err, errlen, "out of memory");
    return false;
  }
  for (int i = 0; i < f->count; i++)
    refs[i] = (TRef){&f->tensors[i], i};

  /* Duplicates are refused by the JSON parser already; the name index is
     for st_find. */
  qsort(refs, f->count, sizeof *refs, cmp_by_name);
  for (int i = 0; i < f->count; i++)
    f->by_name[i] = refs[i].index;

  /* Overlaps: after sorting by start, each range must end before the next
     begins. Empty tensors occupy no bytes and overlap nothing. */
  qsort(refs, f->count, sizeof *refs, cmp_by_offset);
  const StTensor *prev = NULL;
  for (int i = 0; i < f->count; i++) {
    const StTensor *t = refs[i].t;
    if (t->nbytes == 0)
      continue;
    if (prev && t->data < prev->data + prev->nbytes) {
      fail(err, errlen, "tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap", prev->name,
           (long long)(prev->data - data), (long long)(prev->data - data + prev->nbytes), t->name,
           (long long)(t->data - data), (long long)(t->data - data + t->nbytes));
      free(refs);
      return false;
    }
    prev = t;
  }
  free(refs);
  return true;
}

/* Validates the whole file (`size` >= 8 bytes at `bytes`) into f. Returns f,
   or NULL with a message in err (the caller closes f). */
static StFile *st_parse(StFile *f, const unsigned char *bytes, uint64_t size, char *err,
                        size_t errlen) {
  uint64_t hlen = read_le64(bytes);
  if (hlen > size - 8) {
    fail(err, errlen,
         "header length %llu runs past the end of the file (%llu bytes); "
         "not a safetensors file, or truncated",
         (unsigned long long)hlen, (unsigned long long)size);
    return NULL;
  }
  if (hlen > ST_MAX_HEADER) {
    fail(err, errlen, "header length %llu is absurd (limit %llu bytes)", (unsigned long long)hlen,
         (unsigned long long)ST_MAX_HEADER);
    return NULL;
  }
  if (hlen < 2) {
    fail(err, errlen, "header length %llu is too small for a JSON object",
         (unsigned long long)hlen);
    return NULL;
  }

  json_error_t jerr;
  json_t *root = json_loadb((const char *)bytes + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    if (json_error_code(&jerr) == json_error_duplicate_key)
      fail(err, errlen, "header: duplicate tensor name: %s", jerr.text);
    else
      fail(err, errlen, "header is not valid JSON: %s (header line %d, column %d)", jerr.text,
           jerr.line, jerr.column);
    return NULL;
  }
  bool ok = parse_header(f, root, bytes + 8 + hlen, size - 8 - hlen, err, errlen);
  json_decref(root);
  return ok ? f : NULL;
}

StFile *st_open(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fail(err, errlen, "cannot open the weights file: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fail(err, errlen, "cannot read the weights file: %s", strerror(errno));
    close(fd);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    fail(err, errlen, "not a regular file");
    close(fd);
    return NULL;
  }
  uint64_t size = (uint64_t)st.st_size;
  if (size < 8) {
    fail(err, errlen,
         "file is %llu bytes, too short for the 8-byte header length of a "
         "safetensors file",
         (unsigned long long)size);
    close(fd);
    return NULL;
  }

  StFile *f = calloc(1, sizeof *f);
  if (!f) {
    close(fd);
    fail(err, errlen, "out of memory");
    return NULL;
  }
  f->size = (size_t)size;
  f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (f->map == MAP_FAILED) {
    f->map = NULL;
    fail(err, errlen, "cannot map the weights file: %s", strerror(errno));
    st_close(f);
    return NULL;
  }
  StFile *r = st_parse(f, f->map, size, err, errlen);
  if (!r)
    st_close(f);
  return r;
}

StFile *st_open_mem(const void *bytes, size_t size, char *err, size_t errlen) {
  if (size < 8) {
    fail(err, errlen,
         "file is %zu bytes, too short for the 8-byte header length of a "
         "safetensors file",
         size);
    return NULL;
  }
  StFile *f = calloc(1, sizeof *f);
  if (!f) {
    fail(err, errlen, "out of memory");
    return NULL;
  }
  f->size = size;
  StFile *r = st_parse(f, bytes, size, err, errlen);
  if (!r)
    st_close(f);
  return r;
}

int st_count(const StFile *f) { return f->count; }

const StTensor *st_tensor(const StFile *f, int i) {
  return i >= 0 && i < f->count ? &f->tensors[i] : NULL;
}

const StTensor *st_find(const StFile *f, const char *name) {
  int lo = 0, hi = f->count - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    const StTensor *t = &f->tensors[f->by_name[mid]];
    int c = strcmp(name, t->name);
    if (c == 0)
      return t;
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* ------------------------------------------------------------ conversion */

/* IEEE 754 binary16 -> binary32, exact for every input (subnormals, inf, NaN
   payloads kept in the high mantissa bits). */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {
    /* subnormal: value = man * 2^-24; normalize */
    int e = -1;
    do {
      man <<= 1;
      e++;
    } while (!(man & 0x400));
    bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Bytes per element of a convertible dtype. */
static int st_itemsize(StDtype d) { return d == ST_F64 ? 8 : d == ST_F32 ? 4 : 2; }

void st_to_f32_range(const StTensor *t, float *dst, uint64_t first, uint64_t n) {
  CHECK(t->dtype != ST_OTHER, "st_to_f32 of a %s tensor: the caller checks the dtype",
        t->dtype_name);
  const unsigned char *p = t->data + first * (uint64_t)st_itemsize(t->dtype);
  switch (t->dtype) {
  case ST_F32: {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, p, n * 4);
    break;
#endif
    for (uint64_t i = 0; i < n; i++) {
      uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                   (uint32_t)p[4 * i + 3] << 24;
      memcpy(&dst[i], &b, 4);
    }
    break;
  }
  case ST_F64: {
    for (uint64_t i = 0; i < n; i++) {
      uint64_t b = read_le64(p + 8 * i);
      double d;
      memcpy(&d, &b, 8);
      dst[i] = (float)d;
    }
    break;
  }
  case ST_F16: {
    for (uint64_t i = 0; i < n; i++)
      dst[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
    break;
  }
  case ST_BF16: {
    for (uint64_t i = 0; i < n; i++) {
      uint32_t b = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
      memcpy(&dst[i], &b, 4);
    }
    break;
  }
  case ST_OTHER:
    break;
  }
}

void st_to_f32(const StTensor *t, float *dst) {
  CHECK(t->dtype != ST_OTHER, "st_to_f32 of a %s tensor: the caller checks the dtype",
        t->dtype_name);
  st_to_f32_range(t, dst, 0, t->nbytes / (uint64_t)st_itemsize(t->dtype));
}
