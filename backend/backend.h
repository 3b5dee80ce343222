/*
 * backend.h: graph IR -> LLVM module (LLVM-C API) -> object -> shared object.
 * The map of backend/.
 *
 *   backend/codegen.c   module, forward function, info globals, the blob
 *   backend/kernels.c   one specialized kernel function per op instance
 *   backend/loops.c     small helpers to build counted loops in LLVM IR
 *   backend/target.c    target machine (host CPU by default), optimization,
 *                       emission of asm/obj, final link with the runtime
 */
#ifndef CNNCC_BACKEND_H
#define CNNCC_BACKEND_H

#include <stdbool.h>

#include "../support/diag.h"
#include "../ir/ir.h"
#include "../support/progress.h"

typedef enum {
  EMIT_LLVM, /* textual LLVM IR (.ll) */
  EMIT_ASM,  /* assembly (.s) */
  EMIT_OBJ,  /* relocatable object (.o) */
  EMIT_SO,   /* the shared object (default) */
} EmitKind;

typedef struct {
  const char *output; /* final file; written atomically */
  EmitKind emit;
  int opt_level;               /* 0..3 */
  const char *target_cpu;      /* NULL: the host's */
  const char *target_features; /* NULL: the host's (if target_cpu is NULL) */
  bool external_weights;       /* write OUTPUT.weights beside the .so */
  const char *runtime_lib;     /* path of libcnnrt.a */
  const char *cc;              /* C compiler driver for the final link */
  const char *compiler_ident;  /* string for cnn_info.compiler */
  bool verbose;
  int winograd; /* 1: 3x3 stride-1 convs that qualify use Winograd
                   F(4x4,3x3) / F(2x2,3x3) (backend/winograd.c);
                   0: off (the direct kernels everywhere) */
  /* Reports the steps (packing weights, generating kernels, LLVM
     optimization, machine code, linking) as they go; NULL: silent. */
  const ProgressHook *progress;
} BackendOptions;

/* 0 on success; 1 after a user-facing error (reported through d); 2 on an
   internal error (also reported). Never leaves a partial output file. */
int backend_compile(Graph *g, const BackendOptions *o, Diag *d);

/* "19.1.7" */
const char *backend_llvm_version(void);
/* Host CPU name and features as LLVM reports them (caller frees with free). */
char *backend_host_cpu(void);
char *backend_host_features(void);

#endif
