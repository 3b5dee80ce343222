/*
 * backend.h: graph IR -> LLVM module (LLVM-C API) -> object -> shared object;
 * the public face of backend/ (what the driver and the tests call).
 *
 *   backend/codegen.c   backend_compile step by step; cnnrt_forward and the
 *                       info globals
 *   backend/blob.c      the packed weights: layout, file, build id
 *   backend/kernels.c   the kernel table: one decision per node; the cache
 *   backend/nchw.c      the generic kernel of every op on NCHW
 *   backend/blocked.c   NCHW16c kernels: register-tiled direct conv, pools,
 *                       affine, concat, reorder
 *   backend/grouped.c   small-group convs on NCHW16c (and the depthwise
 *                       ones depthwise.c does not take)
 *   backend/depthwise.c depthwise convs (groups = channels) on NCHW16c
 *   backend/winograd.c  3x3, 5x5, 1x7/7x1, 1x3/3x1 stride-1 convs by Winograd
 *   backend/gemm1x1.c   1x1 convs on NCHW as a register-tiled GEMM
 *   backend/linear.c    linear layers over the rows of a batch
 *   backend/tiles.c     geometry the kernels share (row tiles, borders)
 *   backend/bf16.c      --precision=bf16: bf16 weights, widened in the loads
 *   backend/int8.c      --precision=int8: quantized conv/linear (vpdpbusd)
 *   backend/amx.c       bf16 and int8 convs on AMX tiles, and bf16 convs by
 *                       AVX512_BF16 vdpbf16ps where AMX is absent
 *   backend/activation.c  the activations, on a float or a vector
 *   backend/loops.c     the vocabulary of LLVM IR building
 *   backend/target.c    target machine, optimization, emission, link
 *   backend/tuning.c    the --tune keys (Tuning, below)
 *
 * backend_internal.h is the map of the insides (which file calls which).
 */
#ifndef CNNCC_BACKEND_H
#define CNNCC_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../support/diag.h"
#include "../ir/ir.h"
#include "../support/progress.h"

typedef enum {
  EMIT_LLVM, /* textual LLVM IR (.ll) */
  EMIT_ASM,  /* assembly (.s) */
  EMIT_OBJ,  /* relocatable object (.o) */
  EMIT_SO,   /* the shared object (default) */
} EmitKind;

/*
 * Tuning: every value besides the IR, the target and -O that changes the
 * generated code (backend/tuning.c has the table of keys, defaults, ranges
 * and help). The driver fills it once: tuning_defaults, then tuning_set for
 * each --tune KEY=VALUE; the backend only reads it. 0 means "auto" where
 * the key's help says so.
 */
typedef struct {
  bool winograd;        /* --winograd: 3x3, 5x5, 1x7/7x1, 1x3/3x1 stride-1 convs that qualify use
                           Winograd (backend/winograd.c) */
  int conv_tile;        /* conv.tile: pixels per register tile of the direct conv */
  int conv_ocb;         /* conv.ocb: output blocks per register tile */
  int conv_prefetch;    /* conv.prefetch: weight prefetch distance (floats), 0: none */
  int conv_order;       /* conv.order: 0 group-major, 1 row-major, 2/3 the cheaper */
  int grouped_tile;     /* grouped.tile: pixels per tile of the small-group conv */
  int depthwise;        /* depthwise: depthwise.c for 1 3x3 stride 1, 2 all, 0 none */
  int depthwise_rows;   /* depthwise.rows: output rows per register tile (0: auto) */
  int depthwise_tile;   /* depthwise.tile: pixels per register tile row (0: auto) */
  int depthwise_mode;   /* depthwise.mode: experiment bits */
  int winograd_m;       /* winograd.m: 0 by plane size, else 2 or 4 for every layer */
  int winograd_min_ic;  /* winograd.min_ic */
  int winograd_min_hw;  /* winograd.min_hw */
  int winograd_min_hw2; /* winograd.min_hw2 */
  int winograd_tile;    /* winograd.tile: transform tiles per register tile */
  int winograd_chunk;   /* winograd.chunk: register tiles per chunk */
  int winograd_v_kb;    /* winograd.v_kb: stack budget of V (KB) */
  int winograd_m_kb;    /* winograd.m_kb: stack budget of M (KB) */
  int amx;              /* amx: bf16 convs on AMX tiles where the target has them */
  int amx_rows;         /* amx.rows: output rows per band of the AMX conv (0: auto) */
  int dpbf16;           /* dpbf16: bf16 convs by vdpbf16ps where AMX is absent or off */
  int linear_tile;      /* linear.tile: feature blocks per full register tile (0: auto) */
} Tuning;

/* Every key at its default (winograd off). */
void tuning_defaults(Tuning *t);
/* Applies "KEY=VALUE"; false with a message on an unknown key or a value
   out of range. */
bool tuning_set(Tuning *t, const char *assignment, char *err, size_t errlen);
/* The keys whose value is not the default, "conv.tile=8,winograd.m=2", or
   "" (malloc'd; cnn_info.compiler carries it). */
char *tuning_describe(const Tuning *t);
/* One line per key: name, default, help (cnncc --help, --tune=help). */
void tuning_print_help(FILE *out);

/* How conv and linear weights are stored and multiplied (docs/precision.md):
   fp32 (default), or bfloat16 weights widened to fp32 in the kernels'
   weight loads, fp32 accumulation and fp32 activations. */
typedef enum {
  PRECISION_FP32,
  PRECISION_BF16,
  PRECISION_INT8, /* quantized conv/linear (backend/int8.c): AVX512-VNNI or AVX2 */
} Precision;

typedef struct {
  const char *output; /* final file; written atomically */
  EmitKind emit;
  int opt_level;               /* 0..3 */
  const char *target_triple;   /* a backend_targets() triple; NULL: the host's */
  const char *target_cpu;      /* NULL: the host's, or the triple's default CPU */
  const char *target_features; /* NULL: the host's (if target_cpu is NULL) */
  bool external_weights;       /* write OUTPUT.weights beside the .so */
  const char *runtime_lib;     /* path of libcnnrt.a */
  const char *cc;              /* C compiler driver for the final link (host) */
  const char *lld;             /* ld.lld for a cross link (another triple) */
  const char *target_libdir;   /* the target's libc.so and libm.so (cross link) */
  const char *tmpdir;          /* where the work directory goes; NULL: /tmp */
  const char *compiler_ident;  /* string for cnn_info.compiler */
  bool verbose;
  Tuning tune;
  Precision precision; /* --precision */
  /* Reports the steps (packing weights, generating kernels, LLVM
     optimization, machine code, linking) as they go; NULL: silent. */
  const ProgressHook *progress;
} BackendOptions;

/* 0 on success; 1 after a user-facing error (reported through d); 2 on an
   internal error (also reported). Never leaves a partial output file. */
int backend_compile(Graph *g, const BackendOptions *o, Diag *d);

/* A target cnncc compiles for (backend/target.c's table): the triple as
   --target spells it, LLVM's form of it, the CPU used when none is given
   (NULL: the host's, for the host's triple), the CPU levels the test suite
   runs, and one line about them. */
typedef struct {
  const char *triple;      /* "aarch64-linux-gnu" */
  const char *llvm_triple; /* "aarch64-unknown-linux-gnu" */
  const char *default_cpu; /* "generic"; NULL: the host's CPU */
  const char *tested;      /* "cortex-a72 (NEON), generic" */
  const char *about;
} BackendTarget;

/* The table: *n entries. */
const BackendTarget *backend_targets(int *n);
/* The entry of triple (also LLVM's spellings: x86_64-pc-linux-gnu,
   aarch64-unknown-linux-gnu, arm64-linux-gnu), or NULL. */
const BackendTarget *backend_find_target(const char *triple);
/* The entry of the machine cnncc runs on (NULL if it is none of them). */
const BackendTarget *backend_host_target(void);

/* "19.1.7" */
const char *backend_llvm_version(void);
/* Host CPU name and features as LLVM reports them (caller frees with free). */
char *backend_host_cpu(void);
char *backend_host_features(void);

#endif
