/*
 * weights_internal.h: the weights room's internal map.
 *
 *   frontend/weights/safetensors.c  a strict safetensors reader: the file is
 *                                   mapped, its header validated whole (st_*)
 *   frontend/weights/weights.c      binding the tensors of a file to the
 *                                   graph's parameters (weights_load), and
 *                                   the deterministic initialization
 *   frontend/weights/st_write.c     a safetensors writer (st_write_f32), and
 *                                   weights_save on it (--emit=spec)
 *
 * weights.c reads files through safetensors.c, never the other way round;
 * st_write.c calls neither.
 * The reader reports into an error buffer, not a Diag: weights.c, the unit
 * tests and the fuzzer decide how to show its message.
 */
#ifndef CNNCC_WEIGHTS_INTERNAL_H
#define CNNCC_WEIGHTS_INTERNAL_H

#include "../frontend.h"

/* ---------------------------------------------------------- safetensors.c */

typedef enum { ST_F32, ST_F64, ST_F16, ST_BF16, ST_OTHER } StDtype;

typedef struct {
  const char *name;
  StDtype dtype;
  const char *dtype_name; /* as in the header, e.g. "F32" */
  int rank;
  int64_t shape[8];
  const unsigned char *data; /* points into the mapped file */
  uint64_t nbytes;
} StTensor;

typedef struct StFile StFile;
/* Open and validate (header length in bounds, JSON well-formed, offsets
   inside the data area, no overlaps, sizes consistent with dtype and shape,
   no duplicate names). NULL on error with a message in err. */
StFile *st_open(const char *path, char *err, size_t errlen);
/* The same checks on a file already in memory (e.g. a fuzzer's input).
   The bytes are not copied: they must outlive the StFile. */
StFile *st_open_mem(const void *bytes, size_t size, char *err, size_t errlen);
void st_close(StFile *f);
int st_count(const StFile *f);
const StTensor *st_tensor(const StFile *f, int i);
const StTensor *st_find(const StFile *f, const char *name);
/* Convert to float32 into dst (numel floats). */
void st_to_f32(const StTensor *t, float *dst);
/* Convert elements [first, first + n) into dst[0, n): a large tensor in
   pieces (weights_load reports its progress between them). */
void st_to_f32_range(const StTensor *t, float *dst, uint64_t first, uint64_t n);

/* ------------------------------------------------------------- st_write.c */

/* A float32 tensor to write. */
typedef struct {
  const char *name;
  int rank; /* at most 8 */
  const int64_t *shape;
  const float *data; /* the product of the shape's values */
} StWriteTensor;

/* Write t[0..n) as F32 tensors, in that order, to a safetensors file at
   `path`, atomically: a temporary file beside it is renamed over it when
   complete, and removed on any error. Reports "writing weights" (bytes) to
   `progress` (NULL: silent). false with a message in err (an empty,
   reserved or duplicate name, a bad shape, or a write error). */
bool st_write_f32(const char *path, const StWriteTensor *t, int n, const ProgressHook *progress,
                  char *err, size_t errlen);

/* -------------------------------------------------------------- weights.c */

/* The entry points weights_load, weights_load_progress and
   weights_init_deterministic (and st_write.c's weights_save) are declared
   in frontend/frontend.h. */

#endif
