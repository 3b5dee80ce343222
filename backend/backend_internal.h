/*
 * backend_internal.h: what the files of backend/ share; the map of the
 * backend's insides (backend.h is its public face).
 *
 * One LLVM module per network. codegen.c drives: it packs the weights,
 * resolves every tensor to an address expression, asks kernels.c for one
 * kernel function per node (identical ones are shared through a key), emits
 * cnnrt_forward and the info globals, then hands the module to target.c.
 * loops.c is the small vocabulary of LLVM IR building (constants, counted
 * loops, ifs, typed loads and stores) the kernels are written in.
 */
#ifndef CNNCC_BACKEND_INTERNAL_H
#define CNNCC_BACKEND_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "backend.h"

/* Everything an emitter needs about the module being built. */
typedef struct BeCtx {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef t_void, t_i1, t_i8, t_i32, t_i64, t_f32, t_ptr;
  LLVMTypeRef t_kernel; /* void(ptr, i64, i64): cnnrt_kernel_fn */
  const char *cpu, *features;

  /* The function being emitted (set by be_func_begin). */
  LLVMValueRef fn;
  LLVMBasicBlockRef entry; /* allocas go here */

  /* Kernel cache: key -> function (kernels.c). */
  struct BeKernelCache *cache;
  int nkernels, nshared;
} BeCtx;

/* ------------------------------------------------------------------ loops.c */

LLVMValueRef be_i64(BeCtx *c, int64_t v);
LLVMValueRef be_i32(BeCtx *c, int32_t v);
LLVMValueRef be_f32(BeCtx *c, float v);
LLVMValueRef be_add(BeCtx *c, LLVMValueRef a, LLVMValueRef b); /* i64, nsw */
LLVMValueRef be_sub(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_mul(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_sdiv(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_srem(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_smin(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_smax(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
/* a + k, a * k with a constant. */
LLVMValueRef be_addk(BeCtx *c, LLVMValueRef a, int64_t k);
LLVMValueRef be_mulk(BeCtx *c, LLVMValueRef a, int64_t k);

/* float helpers; be_fadd_r/be_fmax_r allow reassociation (reductions). */
LLVMValueRef be_fadd(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_fadd_r(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_fmul(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_fdiv(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_fsub(BeCtx *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef be_fmuladd(BeCtx *c, LLVMValueRef a, LLVMValueRef b,
                        LLVMValueRef acc); /* a*b+acc, fusable */
LLVMValueRef be_fmax_nan(BeCtx *c, LLVMValueRef m, LLVMValueRef x); /* x>m or NaN ? x : m */
LLVMValueRef be_fmax_r(BeCtx *c, LLVMValueRef a, LLVMValueRef b);   /* reduction max */
LLVMValueRef be_relu(BeCtx *c, LLVMValueRef x);                     /* x<0 ? 0 : x */
LLVMValueRef be_sitofp(BeCtx *c, LLVMValueRef i);
/* Unary float intrinsic by name: "llvm.exp", "llvm.sqrt"; binary "llvm.pow". */
LLVMValueRef be_fcall1(BeCtx *c, const char *intrinsic, LLVMValueRef x);
LLVMValueRef be_fcall2(BeCtx *c, const char *intrinsic, LLVMValueRef x,
                       LLVMValueRef y);

/* Addressing: float pointer + element index; loads and stores of f32/i64. */
LLVMValueRef be_fptr(BeCtx *c, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef be_ld(BeCtx *c, LLVMValueRef base, LLVMValueRef idx);
void be_st(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
/* A constant internal i64 table (e.g. the valid output-column range per
   kernel column) and a load from it. */
LLVMValueRef be_table_i64(BeCtx *c, const char *name, const int64_t *v, int n);
LLVMValueRef be_ld_i64(BeCtx *c, LLVMValueRef table, LLVMValueRef idx);

/* A scalar variable (alloca in the entry block; mem2reg promotes it). */
LLVMValueRef be_var(BeCtx *c, LLVMTypeRef t, const char *name);

/* Counted loop for (iv = lo; iv < hi; iv++). be_for leaves the builder in
   the body with l->iv set; be_for_end closes it and continues after. */
typedef struct {
  LLVMBasicBlockRef header, body, exit;
  LLVMValueRef iv;
} BeLoop;
void be_for(BeCtx *c, BeLoop *l, LLVMValueRef lo, LLVMValueRef hi,
            const char *name);
void be_for_end(BeCtx *c, BeLoop *l);

/* if (cond) { ... } with an optional else. */
typedef struct {
  LLVMBasicBlockRef then_bb, else_bb, end_bb;
  bool has_else;
} BeIf;
void be_if(BeCtx *c, BeIf *f, LLVMValueRef cond);
void be_else(BeCtx *c, BeIf *f);
void be_endif(BeCtx *c, BeIf *f);

/* Start a function body (entry block, builder positioned); attributes for
   the target and nounwind. */
void be_func_begin(BeCtx *c, LLVMValueRef fn);
void be_func_attrs(BeCtx *c, LLVMValueRef fn);
void be_add_enum_attr(BeCtx *c, LLVMValueRef fn, unsigned idx, const char *name);

/* ---------------------------------------------------------------- kernels.c */

/* How a node's pointers may alias (decided by codegen from Node.mem). */
typedef enum {
  BE_DISJOINT,     /* output shares storage with no input: all noalias */
  BE_INPLACE,      /* elementwise, output == input `inplace` exactly */
  BE_OVERLAP,      /* concat into its own slices: no noalias at all */
} BeAlias;

/* Most pointers one kernel takes (output + inputs + parameters). */
#define BE_MAX_KERNEL_PTRS 256

/* One kernel launch: the function and the number of work items. The
   pointers passed are: output, inputs in Node.in order, then parameters
   (Node.params[0..nparams), NULL slots passed as NULL). */
typedef struct {
  LLVMValueRef fn;
  int64_t work;
} BeKernel;

/* Emits (or reuses) the kernel of n. On an unsupported op/layout writes
   a message into err and returns false (an internal error). */
bool be_kernel_for(BeCtx *c, const Node *n, BeAlias alias, int inplace,
                   BeKernel *k, char *err, size_t errlen);
void be_kernel_cache_free(BeCtx *c);

/* ----------------------------------------------------------------- target.c */

/* Creates the target machine for o (host CPU unless overridden); sets *cpu
   and *features (malloc'd). NULL + message on failure. */
LLVMTargetMachineRef be_target_machine(const BackendOptions *o, char **cpu,
                                       char **features, char *err,
                                       size_t errlen);
/* Runs the optimization pipeline for o->opt_level. */
bool be_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level,
                 char *err, size_t errlen);
/* Emits an object or assembly file. */
bool be_emit_file(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *path,
                  bool assembly, char *err, size_t errlen);
/* cc -shared -o out obj runtime -lm -lpthread ...; linker output on failure
   is copied into err. */
bool be_link_shared(const BackendOptions *o, const char *obj, const char *out,
                    char *err, size_t errlen);

#endif
