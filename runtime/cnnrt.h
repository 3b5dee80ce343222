/*
 * cnnrt.h: the contract between the code cnncc generates and the runtime
 * (libcnnrt.a) linked into every .so. Not installed; hosts use cnn.h only.
 * The map of runtime/:
 *
 *   runtime/cnn.h      the host ABI, the only public header (installed)
 *   runtime/cnnrt.h    this contract: what the generated object defines and
 *                      what the runtime offers it (backend/ includes it too)
 *   runtime/runtime.c  the cnn_* functions: create (weights embedded or
 *                      read into memory, arena, settings read once), run, destroy
 *   runtime/threads.c  the thread pool behind cnnrt_parallel_for and
 *                      cnnrt_launch, and the per-layer profiler
 *   runtime/trace.c    the profile as a Chrome trace-event file
 *                      (cnn_set_profile(m, "trace:FILE"))
 *
 * The generated object defines (hidden visibility):
 *   cnnrt_info          the cnn_info returned by cnn_get_info()
 *   cnnrt_blob          the embedded weight blob (CnnrtBlobHeader first),
 *                       64-byte aligned, or absent (cnnrt_blob_size == 0)
 *                       when weights were written beside the .so
 *   cnnrt_blob_size     its size in bytes
 *   cnnrt_build_id      identifies spec + weight layout; a blob whose header
 *                       carries another id is refused by cnn_create
 *   cnnrt_uses_amx      whether cnn_create must request AMX tile state
 *   cnnrt_forward       runs one sample
 *   cnnrt_forward_head  the batched tail (below): one sample up to the tail
 *   cnnrt_forward_tail  the tail for up to cnnrt_tail_tile samples at once
 *
 * The runtime defines cnnrt_launch, which the generated forward function
 * calls once per kernel launch (cnnrt_parallel_for plus the profiler).
 */
#ifndef CNNRT_H
#define CNNRT_H

#include <stdint.h>

#include "cnn.h"

/* Everything shared between the generated object and the runtime stays
   inside the .so: hidden, so references bind locally (no GOT, no PLT) and
   nothing but the cnn_* functions is exported. */
#define CNNRT_HIDDEN __attribute__((visibility("hidden")))

/* A generated kernel: ptrs holds its tensors' addresses in the order the
   backend chose (output first, then inputs, then parameters); it computes
   work items [lo, hi) of its iteration space. */
typedef void (*cnnrt_kernel_fn)(void *const *ptrs, int64_t lo, int64_t hi);

typedef struct cnnrt_ctx cnnrt_ctx;

/* Runs fn over [0, n), split across the model's threads in contiguous
   chunks; returns when all are done. n <= 0 is a no-op. The chunks do not
   depend on the thread count (up to 8 threads), so neither do results. */
CNNRT_HIDDEN void cnnrt_parallel_for(cnnrt_ctx *ctx, cnnrt_kernel_fn fn, void *const *ptrs,
                                     int64_t n);

/* cnnrt_parallel_for for layer number `layer` of the tables below: the
   same, timed when the model profiles (cnn_set_profile, or CNN_PROFILE at
   cnn_create: a per-layer table of ms, GFLOP/s and GB/s goes to stderr when the
   profile ends: profiling turned off, the thread count changed or the
   model destroyed). */
CNNRT_HIDDEN void cnnrt_launch(cnnrt_ctx *ctx, cnnrt_kernel_fn fn, void *const *ptrs, int64_t n,
                               int32_t layer);

/* One entry per kernel launch of cnnrt_forward, in order (generated). */
extern CNNRT_HIDDEN const int32_t cnnrt_num_layers;
/* "name\top\tkernel": the node's name, its op ("/16c" on NCHW16c) and the
   kernel that runs it (backend/kernels.c's row: "winograd", "direct16") */
extern CNNRT_HIDDEN const char *const cnnrt_layer_names[];
extern CNNRT_HIDDEN const int64_t cnnrt_layer_flops[]; /* per sample */
/* per sample: the float32 bytes of the output, the distinct inputs and
   the parameters, what the layer must at least move (the profile's GB/s) */
extern CNNRT_HIDDEN const int64_t cnnrt_layer_bytes[];

#define CNNRT_BLOB_MAGIC "CNNCCWB1" /* 8 bytes */
#define CNNRT_BUILD_ID_LEN 32       /* hex digits, NUL-padded to 40 */

/* The weight blob: this header, padding to 64 bytes, then the packed data.
   All offsets the generated code uses are relative to the start of data. */
typedef struct {
  char magic[8];       /* CNNRT_BLOB_MAGIC */
  uint64_t data_bytes; /* bytes after the 64-byte header */
  char build_id[40];   /* NUL-terminated hex */
  uint64_t reserved;
} CnnrtBlobHeader;
_Static_assert(sizeof(CnnrtBlobHeader) == 64, "blob header is 64 bytes");

extern CNNRT_HIDDEN const cnn_info cnnrt_info;
extern CNNRT_HIDDEN const unsigned char cnnrt_blob[];
extern CNNRT_HIDDEN const uint64_t cnnrt_blob_size;
extern CNNRT_HIDDEN const char cnnrt_build_id[];
/* 1 when the code uses AMX tiles (backend/amx.c): cnn_create then asks
   Linux for the tile state (arch_prctl ARCH_REQ_XCOMP_PERM), without
   which the first tile instruction would kill the process (SIGILL). */
extern CNNRT_HIDDEN const int32_t cnnrt_uses_amx;

/* One sample: weights = blob data (after the header), arena = arena_bytes of
   scratch, 64-byte aligned; inputs/outputs point at this sample's slice. */
CNNRT_HIDDEN void cnnrt_forward(cnnrt_ctx *ctx, const float *weights, float *arena,
                                const float *const *inputs, float *const *outputs);

/* The batched tail: the fully connected layers at the end of a network
   (and whatever follows them) run for up to cnnrt_tail_tile samples at
   once, so that their weights are read once per group of samples
   (backend/linear.c), not once per sample. cnnrt_tail_tile is 0 when the
   network has no such tail: cnnrt_forward then runs each sample, and the
   two functions below are never called. Otherwise a group of nb <=
   cnnrt_tail_tile samples runs as cnnrt_forward_head once per sample b,
   on any arena, into slot b of a tail arena (cnnrt_tail_slot_bytes per
   slot, 64-byte aligned), then cnnrt_forward_tail once for the group:
   outputs[i] points at sample 0's slice of output i, the others follow.
   Every sample gives the same bits as through cnnrt_forward. */
extern CNNRT_HIDDEN const int32_t cnnrt_tail_tile;
extern CNNRT_HIDDEN const int64_t cnnrt_tail_slot_bytes;
CNNRT_HIDDEN void cnnrt_forward_head(cnnrt_ctx *ctx, const float *weights, float *arena,
                                     const float *const *inputs, void *slot);
CNNRT_HIDDEN void cnnrt_forward_tail(cnnrt_ctx *ctx, const float *weights, void *tail, int64_t nb,
                                     float *const *outputs);

/* ------------------------------------------------- runtime internals
   (threads.c, used by runtime.c). A cnnrt_ctx is a model's thread pool:
   nthreads - 1 workers plus the calling thread. Nothing here reads the
   environment: runtime.c reads it once, at cnn_create. */
#define CNNRT_MAX_THREADS 1024
CNNRT_HIDDEN cnnrt_ctx *cnnrt_pool_create(int nthreads);
/* Prints the profile (if the pool profiles) and stops the threads. */
CNNRT_HIDDEN void cnnrt_pool_destroy(cnnrt_ctx *ctx);
CNNRT_HIDDEN int cnnrt_pool_threads(const cnnrt_ctx *ctx);
/* on: allocates zeroed per-layer counters (kept if already there); -1 if
   out of memory. Off: prints the table gathered so far to stderr and frees
   the counters. Only between launches, never inside cnn_run. */
CNNRT_HIDDEN int cnnrt_pool_set_profiling(cnnrt_ctx *ctx, int on);
/* Nonzero when the pool profiles or traces: cnn_run then keeps every
   launch on the pool, so that each layer is timed. */
CNNRT_HIDDEN int cnnrt_pool_profiling(const cnnrt_ctx *ctx);

/* trace.c: the slices of a trace:FILE profile, written as Chrome
   trace-event JSON. A trace belongs to the model (it outlives a pool that
   cnn_set_num_threads replaces); the pool records into the one it is
   given. */
typedef struct cnnrt_trace cnnrt_trace;
#define CNNRT_TRACE_SLICES 131072 /* the buffer: 48 bytes a slice, 6 MB */
/* Creates (or truncates) the file at path ("%p" in it becomes the process
   id) and allocates room for `capacity` slices; NULL with a message in
   err if either fails. */
CNNRT_HIDDEN cnnrt_trace *cnnrt_trace_open(const char *path, int64_t capacity, char *err,
                                           size_t len);
/* Whether t was opened for this path (as given, before "%p"). */
CNNRT_HIDDEN int cnnrt_trace_same_file(const cnnrt_trace *t, const char *path);
/* Now, in ms on the clock of the slices (CLOCK_MONOTONIC). */
CNNRT_HIDDEN double cnnrt_trace_now(void);
/* One slice: layer -1 is a cnn_run call (extra: its batch); else a launch
   of that layer on thread tid (0: the caller; extra: its wait ms), which
   ran `items` of its n work items. Dropped, and counted, when the buffer
   is full. Never allocates. NULL t: nothing. */
CNNRT_HIDDEN void cnnrt_trace_slice(cnnrt_trace *t, double t0, double t1, int32_t layer,
                                    int32_t tid, int64_t items, int64_t n, double extra);
/* Writes the file and frees t; -1 (after a line on stderr) if the file
   could not be written. NULL: nothing. */
CNNRT_HIDDEN int cnnrt_trace_close(cnnrt_trace *t);
/* Frees t without writing (its file stays as created). */
CNNRT_HIDDEN void cnnrt_trace_discard(cnnrt_trace *t);
/* The trace the pool records into from its next launch (NULL: none).
   Only between launches. */
CNNRT_HIDDEN void cnnrt_pool_set_trace(cnnrt_ctx *ctx, cnnrt_trace *t);
/* A context without threads that splits every launch into the same chunks
   as `pool` and runs them in order on the calling thread (one lane of a
   sample-parallel batch: the same bits as a run on the pool). */
CNNRT_HIDDEN cnnrt_ctx *cnnrt_serial_create(const cnnrt_ctx *pool);
CNNRT_HIDDEN void cnnrt_serial_destroy(cnnrt_ctx *ctx);
/* The cores this process may run on (one thread per core). */
CNNRT_HIDDEN int cnnrt_cores(void);

#endif
