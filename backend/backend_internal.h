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
  bool avx512;       /* the target has 32 zmm registers (register tile sizes) */
  LLVMTypeRef t_v16; /* <16 x float> */

  /* The function being emitted (set by be_func_begin). */
  LLVMValueRef fn;
  LLVMBasicBlockRef entry; /* allocas go here */

  /* Kernel cache: key -> function (kernels.c). */
  struct BeKernelCache *cache;
  int nkernels, nshared;
} BeCtx;

/* ------------------------------------------------------------------ loops.c */

/* ceil(a / b) for a >= 0, b > 0 (tile counts). */
static inline int64_t be_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

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
                        LLVMValueRef acc);                          /* a*b+acc, fusable */
LLVMValueRef be_fmax_nan(BeCtx *c, LLVMValueRef m, LLVMValueRef x); /* x>m or NaN ? x : m */
LLVMValueRef be_fmax_r(BeCtx *c, LLVMValueRef a, LLVMValueRef b);   /* reduction max */
LLVMValueRef be_relu(BeCtx *c, LLVMValueRef x);                     /* x<0 ? 0 : x */
LLVMValueRef be_sitofp(BeCtx *c, LLVMValueRef i);
/* A call of the LLVM intrinsic `name` instantiated for the overload types
   tys[0..ntys) (e.g. "llvm.masked.load" with {<16 x float>, ptr}). */
LLVMValueRef be_intrinsic(BeCtx *c, const char *name, LLVMTypeRef *tys, int ntys,
                          LLVMValueRef *args, int nargs);
/* Unary float intrinsic by name: "llvm.exp", "llvm.sqrt"; binary "llvm.pow". */
LLVMValueRef be_fcall1(BeCtx *c, const char *intrinsic, LLVMValueRef x);
LLVMValueRef be_fcall2(BeCtx *c, const char *intrinsic, LLVMValueRef x, LLVMValueRef y);

/* Addressing: float pointer + element index; loads and stores of f32/i64. */
LLVMValueRef be_fptr(BeCtx *c, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef be_ld(BeCtx *c, LLVMValueRef base, LLVMValueRef idx);
void be_st(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
/* A constant internal i64 table (e.g. the valid output-column range per
   kernel column) and a load from it. */
LLVMValueRef be_table_i64(BeCtx *c, const char *name, const int64_t *v, int n);
LLVMValueRef be_ld_i64(BeCtx *c, LLVMValueRef table, LLVMValueRef idx);

/* <16 x float> helpers: a splat, loads and stores (align 64 when the
   address is known to be 64-byte aligned, else 4), a scalar load broadcast
   to all lanes, fma, relu, NaN-propagating max, horizontal ops none. */
LLVMValueRef be_vsplat(BeCtx *c, LLVMValueRef scalar);
LLVMValueRef be_vld(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, unsigned align);
void be_vst(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, unsigned align);
LLVMValueRef be_vbcast(BeCtx *c, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef be_vfma(BeCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc);
LLVMValueRef be_vrelu(BeCtx *c, LLVMValueRef x);

/* A scalar variable (alloca in the entry block; mem2reg promotes it). */
LLVMValueRef be_var(BeCtx *c, LLVMTypeRef t, const char *name);

/* Counted loop for (iv = lo; iv < hi; iv++). be_for leaves the builder in
   the body with l->iv set; be_for_end closes it and continues after. */
typedef struct {
  LLVMBasicBlockRef header, body, exit;
  LLVMValueRef iv;
} BeLoop;
void be_for(BeCtx *c, BeLoop *l, LLVMValueRef lo, LLVMValueRef hi, const char *name);
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
  BE_DISJOINT, /* output shares storage with no input: all noalias */
  BE_INPLACE,  /* elementwise, output == input `inplace` exactly */
  BE_OVERLAP,  /* concat into its own slices: no noalias at all */
} BeAlias;

/* Most pointers one kernel takes (output + inputs + parameters). */
#define BE_MAX_KERNEL_PTRS 256

/* One kernel launch: the function and the number of work items. The
   pointers passed are: output, inputs in Node.in order, then parameters
   (Node.params[0..nparams), NULL slots passed as NULL), then for a split
   node the address of each SLICE user in channel order (the output pointer
   is then NULL). */
typedef struct {
  LLVMValueRef fn;
  int64_t work;
} BeKernel;

/* The values an emitter works with inside the kernel body. */
typedef struct {
  const Node *n;
  LLVMValueRef out;
  LLVMValueRef *in;  /* n->nin */
  LLVMValueRef *par; /* n->nparams, NULL for an absent slot */
  LLVMValueRef res;  /* residual input of the epilogue, or NULL */
  LLVMValueRef lo, hi;
  /* Split output: nseg segments, segment s holds channels
     [seg_begin[s], seg_begin[s] + seg_count[s]) at address seg[s]. */
  int nseg;
  LLVMValueRef *seg;
  const int64_t *seg_begin, *seg_count;
} KArgs;

/* Where output channel (unit 1) or channel block (unit 16) idx is written:
   *base = k->out and *local = idx, or for a split node the segment that
   holds it and idx relative to the segment's start. */
void be_split_out(BeCtx *c, KArgs *k, LLVMValueRef idx, int64_t unit, LLVMValueRef *base,
                  LLVMValueRef *local);

/* The SLICE users of a split node, in channel order (malloc'd array of
 *n nodes; NULL and 0 for a node that is not split). */
Node **be_split_slices(const Graph *g, const Node *n, int *count);

/* blocked.c: kernels on the NCHW16c layout (and the weight packing they
   rely on). Work items as documented there. */
int64_t be_work_conv_blocked(const BeCtx *c, const Node *n);
void be_emit_conv_blocked(BeCtx *c, KArgs *k);
int64_t be_work_blocks_rows(const BeCtx *c, const Node *n); /* (C/16) * OH */
int64_t be_work_blocks(const BeCtx *c, const Node *n);      /* C/16 */
/* The row walker of the direct convs (blocked.c, grouped.c): tiles of up
   to T pixels over a row of W; interior tiles [owA, owB] in a loop with
   ow0c = -1, edge tiles at constant positions ow0c. */
typedef void (*BeTileFn)(BeCtx *c, void *ctx, LLVMValueRef ow0, int64_t ow0c, int w);
void be_emit_row_tiles(BeCtx *c, int64_t W, int64_t T, int64_t owA, int64_t owB, BeTileFn tile,
                       void *ctx);
/* Per output row oh, the kernel rows [kh0[oh], kh1[oh]) whose input row
   oh*sh - pt + kh*dh lies inside [0, IH): two constant tables
   NAME.kh0 / NAME.kh1 (the height border of the direct convs). */
void be_kh_tables(BeCtx *c, const char *name, int64_t IH, int64_t OH, int64_t KH, int64_t sh,
                  int64_t pt, int64_t dh, LLVMValueRef *kh0, LLVMValueRef *kh1);
void be_interior_cols(int64_t IW, int64_t KW, int64_t sw, int64_t pl, int64_t dw, int64_t *owA,
                      int64_t *owB);
void be_emit_pool_blocked(BeCtx *c, KArgs *k);
void be_emit_adaptive_avgpool_blocked(BeCtx *c, KArgs *k);
void be_emit_affine_blocked(BeCtx *c, KArgs *k);
void be_emit_concat_blocked(BeCtx *c, KArgs *k);
int64_t be_work_reorder(const BeCtx *c, const Node *n);
void be_emit_reorder(BeCtx *c, KArgs *k);
/* The weight w of node n in the packed order its kernel reads (malloc'd),
   or NULL when n reads its weights as PyTorch lays them out. The IR keeps
   the original data; packing happens as the blob is written. */
float *be_packed_weights(const Node *n, const Param *w);

/* grouped.c: grouped/depthwise convs on NCHW16c whose groups have Cg < 16
   input and output channels, Cg dividing 16 (be_conv_grouped_blocked says
   whether n is one; passes/layout.c applies the same rule). Work items:
   (output block) x (output row). Its weights are packed by
   be_packed_weights_grouped (called from be_packed_weights). */
bool be_conv_grouped_blocked(const Node *n);
int64_t be_work_conv_grouped(const BeCtx *c, const Node *n);
void be_emit_conv_grouped(BeCtx *c, KArgs *k);
float *be_packed_weights_grouped(const Node *n, const Param *w);

/* winograd.c: 3x3 stride-1 convs on NCHW16c by Winograd F(m x m, 3x3).
   be_winograd_configure sets the mode for one compilation (before the
   blob is laid out); be_winograd_use says whether n takes that path; its
   weight's blob slot then holds be_winograd_numel floats (0: not such a
   weight), written by be_winograd_weights (malloc'd). */
void be_winograd_configure(const BackendOptions *o);
bool be_winograd_use(const Node *n);
int64_t be_winograd_numel(const Node *n, const Param *w);
float *be_winograd_weights(const Node *n, const Param *w);
int64_t be_work_conv_winograd(const BeCtx *c, const Node *n);
void be_emit_conv_winograd(BeCtx *c, KArgs *k);

/* gemm1x1.c: a 1x1 stride-1 unpadded ungrouped conv, NCHW in and out (not
   split) as a register-tiled GEMM. Work items: (tile of output channels) x
   (chunk of pixels). */
bool be_conv_gemm1x1(const Node *n);
int64_t be_work_conv_gemm1x1(const BeCtx *c, const Node *n);
void be_emit_conv_gemm1x1(BeCtx *c, KArgs *k);

/* Emits (or reuses) the kernel of n. On an unsupported op/layout writes
   a message into err and returns false (an internal error). */
bool be_kernel_for(BeCtx *c, const Graph *g, const Node *n, BeAlias alias, int inplace, BeKernel *k,
                   char *err, size_t errlen);
void be_kernel_cache_free(BeCtx *c);

/* ----------------------------------------------------------------- target.c */

/* Creates the target machine for o (host CPU unless overridden); sets *cpu
   and *features (malloc'd). NULL + message on failure. */
/* kernels.c: adaptive-pool column bins [floor(i*L/n), ceil((i+1)*L/n)) as
   two constant i64 tables. */
void be_adaptive_bins(BeCtx *c, int64_t L, int64_t n, LLVMValueRef *starts, LLVMValueRef *ends);

LLVMTargetMachineRef be_target_machine(const BackendOptions *o, char **cpu, char **features,
                                       char *err, size_t errlen);
/* Whether the target has AVX-512F (features first; else by CPU name). Only
   tile sizes depend on it: the kernels are correct on any target. */
bool be_target_has_avx512(const char *cpu, const char *features);
/* Runs the optimization pipeline for o->opt_level. */
bool be_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, char *err, size_t errlen);
/* Emits an object or assembly file. */
bool be_emit_file(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *path, bool assembly,
                  char *err, size_t errlen);
/* cc -shared -o out obj runtime -lm -lpthread ...; linker output on failure
   is copied into err. */
bool be_link_shared(const BackendOptions *o, const char *obj, const char *out, char *err,
                    size_t errlen);

#endif
