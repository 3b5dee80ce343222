/*
 * backend_internal.h: what the files of backend/ share; the map of the
 * backend's insides (backend.h is its public face).
 *
 * One LLVM module per network. The files, each calling only files listed
 * after it (tools/check_layers.py checks that no two files of a folder call
 * each other, directly or in a cycle):
 *
 *   codegen.c   backend_compile, step by step (see its opening comment);
 *               the forward function and the info globals
 *   blob.c      the packed weights: layout by the kernel decisions, the
 *               blob file, the build id
 *   kernels.c   THE kernel table: one decision per node (kernel, work
 *               split, weight packing, blob size) and the kernel cache
 *   nchw.c      the generic kernel of every op on the NCHW layout
 *   blocked.c   kernels on NCHW16c: the register-tiled direct conv, pools,
 *               affine, concat, reorder
 *   depthwise.c depthwise convs (groups = channels) on NCHW16c
 *   grouped.c   grouped convs with small groups on NCHW16c
 *   winograd.c  stride-1 convs by Winograd: 3x3 F(4x4)/F(2x2), 5x5 F(2x2), 1x7/7x1 F(6,7),
 *               1x3/3x1 F(4,3)
 *   gemm1x1.c   1x1 convs on NCHW as a register-tiled GEMM
 *   linear.c    linear layers over the rows of a batch (the batched tail)
 *   tiles.c     the geometry the kernels share: row tiles, border tables,
 *               pool divisors, split outputs
 *   amx.c       bf16 and int8 convs on AMX tiles (tdpbf16ps, tdpbusd), and
 *               the same bf16 convs by AVX512_BF16 vdpbf16ps (dpbf16)
 *   int8.c      --precision=int8: the quantized conv/linear kernel (vpdpbusd)
 *               and its weight packing
 *   bf16.c      --precision=bf16: which parameters are bf16, the rounding,
 *               the kernels' weight loads (widened to fp32)
 *   activation.c  the activations (Act) on a float or a vector: every
 *               epilogue and activation op calls be_act
 *   loops.c     the vocabulary of LLVM IR building: constants, counted
 *               loops, ifs, typed and vector loads and stores, intrinsics
 *   target.c    target machine, optimization, asm/obj emission, the link
 *   tuning.c    the --tune keys (Tuning, backend.h)
 *
 * Adding a kernel: write its accepts/work/emit (and pack, if it reads its
 * weight in an order of its own) in a kernel file, declare them here, and
 * add one row to kernels.c's table, before the generic row of its op and
 * layout. Nothing else decides which kernel a node gets.
 */
#ifndef CNNCC_BACKEND_INTERNAL_H
#define CNNCC_BACKEND_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "../runtime/cnnrt.h"
#include "backend.h"

/* The machine the code is for, as the kernel plans need it (filled by
   be_target_describe). The kernels compute on <16 x float> values; what
   one costs in registers decides the register tiles:
     x86-64 AVX-512   16 lanes, 32 zmm, FMA: a value is one register
     x86-64 AVX2      8 lanes, 16 ymm, FMA: two registers
     x86-64 SSE4.2    4 lanes, 16 xmm, no FMA: four registers
     aarch64 NEON     4 lanes, 32 q registers, FMA (fmla by element): four
   All kernels are correct on every target; only speed depends on this. */
typedef enum { BE_X86_64, BE_AARCH64 } BeArch;
typedef struct {
  const char *triple, *cpu, *features;
  BeArch arch;
  int lanes;       /* floats per vector register: 16, 8 or 4 */
  int nvregs;      /* vector registers: 32 or 16 */
  bool fma;        /* fused multiply-add instructions (else llvm.fma would be
                      a libm call per lane: kernels then use llvm.fmuladd) */
  bool avx512;     /* lanes == 16: the AVX-512 register tiles */
  bool vnni;       /* AVX512-VNNI vpdpbusd: --precision=int8 (int8.c) */
  bool amx;        /* AMX-TILE and AMX-BF16: --precision=bf16 convs (amx.c) */
  bool amx_int8;   /* AMX-TILE and AMX-INT8: --precision=int8 convs (amx.c) */
  bool avx512bf16; /* AVX512_BF16 vdpbf16ps: --precision=bf16 convs without AMX (amx.c) */
} BeTarget;

/* How many <16 x float> values the vector registers hold: 32 (AVX-512),
   8 (AVX2, NEON), 4 (SSE): the register-tile budget of the kernel plans. */
static inline int be_v16_regs(const BeTarget *t) { return t->nvregs * t->lanes / 16; }

/* What a kernel decision and plan depend on besides the node itself. */
typedef struct {
  BeTarget target;
  const Tuning *tune;
  Precision precision; /* how conv/linear weights are stored (bf16.c) */
} BeConfig;

/* Everything an emitter needs about the module being built. */
typedef struct BeCtx {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef t_void, t_i1, t_i8, t_i32, t_i64, t_f32, t_ptr;
  LLVMTypeRef t_kernel; /* void(ptr, i64, i64): cnnrt_kernel_fn */
  LLVMTypeRef t_v16;    /* <16 x float> */
  const BeConfig *cfg;  /* target and tuning */

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
LLVMValueRef be_fmax_nan(BeCtx *c, LLVMValueRef m, LLVMValueRef x); /* x>m or isnan(x) ? x : m */
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
LLVMValueRef be_vsplat(BeCtx *c, LLVMValueRef scalar); /* 16 lanes of the scalar's type */
LLVMValueRef be_vld(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, unsigned align);
void be_vst(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, unsigned align);
LLVMValueRef be_vbcast(BeCtx *c, LLVMValueRef base, LLVMValueRef idx);
/* Broadcasts by lane (NEON: fmla v.4s by element): instead of one scalar
   load per broadcast, four consecutive floats are loaded once (be_vld4,
   base[idx] 16-byte aligned) and each of their lanes is splat to 16
   (be_vlane), which the AArch64 backend folds into fmla's by-element
   operand. Whether the target wants it: */
bool be_bcast_by_lane(const BeTarget *t);
LLVMValueRef be_vld4(BeCtx *c, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef be_vlane(BeCtx *c, LLVMValueRef v4, int lane);
/* a*b + acc: fused (llvm.fma) on a target with FMA, else llvm.fmuladd. */
LLVMValueRef be_vfma(BeCtx *c, LLVMValueRef a, LLVMValueRef b, LLVMValueRef acc);
/* a*a - aa exactly, aa the rounded a*a (an fma, or Dekker's product on a
   target without FMA): the low part of a square. */
LLVMValueRef be_square_error(BeCtx *c, LLVMValueRef a, LLVMValueRef aa);
LLVMValueRef be_vrelu(BeCtx *c, LLVMValueRef x);
/* The first m of 16 floats at base[idx] (align 4; the other lanes 0), and
   their store: llvm.masked.load/store, or a plain vector op for m = 16. */
LLVMValueRef be_vld_masked(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, int m);
void be_vst_masked(BeCtx *c, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v, int m);

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

/* ------------------------------------------------------------- activation.c */

/* a's activation of x, a float or a <16 x float> (ACT_NONE: x itself). */
LLVMValueRef be_act(BeCtx *c, const Act *a, LLVMValueRef x);

/* ------------------------------------------------------- kernel arguments */

/* How a node's pointers may alias (decided by codegen from Node.mem). */
typedef enum {
  BE_DISJOINT, /* output shares storage with no input: all noalias */
  BE_INPLACE,  /* elementwise, output == input `inplace` exactly */
  BE_OVERLAP,  /* concat into its own slices: no noalias at all */
} BeAlias;

/* Most pointers one kernel takes (output + inputs + parameters + slices). */
#define BE_MAX_KERNEL_PTRS 256

/* The values an emitter works with inside the kernel body: the pointers
   (output, inputs in Node.in order, parameters by slot, NULL for an absent
   one), the residual input of the epilogue (or NULL), the fused gate of
   the input channels (Node.epi.gate, or NULL), the range [lo, hi) of
   work items, and for a split node the slices: nseg segments, segment s
   holds channels [seg_begin[s], seg_begin[s] + seg_count[s]) at address
   seg[s] (the output pointer is then NULL). */
typedef struct {
  const Node *n;
  LLVMValueRef out;
  LLVMValueRef *in;  /* n->nin */
  LLVMValueRef *par; /* n->nparams, NULL for an absent slot */
  LLVMValueRef res;  /* residual input of the epilogue, or NULL */
  LLVMValueRef gate; /* one factor per input channel (epi.gate), or NULL */
  LLVMValueRef lo, hi;
  /* A batched kernel (be_kernel_batched): the samples it runs (i64 nb) and
     the floats between one sample's tensors and the next's (i64 stride);
     NULL for the others. */
  LLVMValueRef nb, stride;
  int nseg;
  LLVMValueRef *seg;
  const int64_t *seg_begin, *seg_count;
  bool wbf16; /* the weight is bf16 (be_param_bf16): be_wvld and kin widen it */
} KArgs;

/* ------------------------------------------------------------------ tiles.c */

/* Where output channel (unit 1) or channel block (unit 16) idx is written:
   *base = k->out and *local = idx, or for a split node the segment that
   holds it and idx relative to the segment's start. */
void be_split_out(BeCtx *c, KArgs *k, LLVMValueRef idx, int64_t unit, LLVMValueRef *base,
                  LLVMValueRef *local);
/* pad-channels' padded output channels (Attrs.padded_from) hold exactly 0,
   whatever the input: the conv's zero weights alone would compute
   0 * inf = NaN there from an infinite input. v (after the epilogue) holds
   channels [16 blk, 16 blk + 16) (be_zero_padded_block) or channel ch (a
   float or a vector of its pixels: be_zero_padded_channel); returns v with
   the padded ones replaced by 0 by a select, or v itself when n has none. */
LLVMValueRef be_zero_padded_block(BeCtx *c, const Node *n, LLVMValueRef blk, LLVMValueRef v);
LLVMValueRef be_zero_padded_channel(BeCtx *c, const Node *n, LLVMValueRef ch, LLVMValueRef v);
/* v, the 16 input channels of block cb (NCHW16c), times their factors of
   the fused gate (Node.epi.gate); v itself when there is none. */
LLVMValueRef be_gate_block(BeCtx *c, const KArgs *k, LLVMValueRef cb, LLVMValueRef v);
/* The row walker of the direct convs (blocked.c, grouped.c): tiles of up
   to T pixels over a row of W; interior tiles [owA, owB] in a loop with
   ow0c = -1, edge tiles at constant positions ow0c. */
typedef void (*BeTileFn)(BeCtx *c, void *ctx, LLVMValueRef ow0, int64_t ow0c, int w);
void be_emit_row_tiles(BeCtx *c, int64_t W, int64_t T, int64_t owA, int64_t owB, BeTileFn tile,
                       void *ctx);
/* The first and last output column whose taps all fall inside the input. */
void be_interior_cols(int64_t IW, int64_t KW, int64_t sw, int64_t pl, int64_t dw, int64_t *owA,
                      int64_t *owB);
/* Per output row oh, the kernel rows [kh0[oh], kh1[oh]) whose input row
   oh*sh - pt + kh*dh lies inside [0, IH): two constant tables
   NAME.kh0 / NAME.kh1 (the height border of the direct convs). */
void be_kh_tables(BeCtx *c, const char *name, int64_t IH, int64_t OH, int64_t KH, int64_t sh,
                  int64_t pt, int64_t dh, LLVMValueRef *kh0, LLVMValueRef *kh1);
/* Average pooling's divisor per output column (xmalloc'd, OW entries). */
int64_t *be_pool_col_divisors(int64_t IW, int64_t OW, int64_t KW, int64_t sw, int64_t pl,
                              int64_t pr, bool count_include_pad);
/* Adaptive-pool column bins [floor(i*L/n), ceil((i+1)*L/n)) as two
   constant i64 tables. */
void be_adaptive_bins(BeCtx *c, int64_t L, int64_t n, LLVMValueRef *starts, LLVMValueRef *ends);

/* ------------------------------------------------------------------- bf16.c */

/* Whether bf16 convs run on dpbf16 for this configuration (--precision=bf16,
   AVX512_BF16 and Tuning.dpbf16, AMX absent or off). */
bool be_bf16_dp_target(const BeConfig *cf);
/* fp32 -> bf16 bits, round to nearest, ties to even; NaN stays a quiet
   NaN; and back (exact). */
uint16_t be_bf16_round(float f);
float be_bf16_widen(uint16_t h);
void be_bf16_round_array(const float *src, uint16_t *dst, int64_t n);
/* The weight (P_WEIGHT) of k's node at float index idx: its address, a
   scalar, 16 consecutive values (align as for be_vld, in fp32 terms), one
   value broadcast; bf16 weights are widened to fp32 as they load. */
LLVMValueRef be_wptr(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef be_wld(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef be_wvld(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx, unsigned align);
LLVMValueRef be_wvbcast(BeCtx *c, const KArgs *k, LLVMValueRef base, LLVMValueRef idx);

/* -------------------------------------------------------------- the kernels */

/* A kernel's parts (one row of kernels.c's table):
   accepts    whether it runs node n (NULL: every node of its op and layout)
   work       the number of work items of n's launch
   emit       the body, on KArgs
   pack       n's weight (P_WEIGHT) in the order the kernel reads it
              (xmalloc'd floats); NULL: as PyTorch lays it out
   packed_numel  the floats pack writes; NULL: the weight's own count */
typedef bool (*AcceptFn)(const BeConfig *cf, const Node *n);
typedef int64_t (*WorkFn)(const BeConfig *cf, const Node *n);
typedef void (*EmitFn)(BeCtx *c, KArgs *k);
typedef float *(*PackFn)(const BeConfig *cf, const Node *n);
typedef int64_t (*PackedNumelFn)(const BeConfig *cf, const Node *n);

typedef struct KernelImpl {
  const char *name; /* "direct16", "winograd", ... */
  Op op;
  Layout layout;
  AcceptFn accepts;
  WorkFn work;
  EmitFn emit;
  bool epilogue; /* applies Node.epi */
  PackedNumelFn packed_numel;
  PackFn pack;
} KernelImpl;

/* nchw.c: one kernel per op on NCHW; the work items are documented there. */
bool be_has_epilogue(const Node *n);
int64_t be_work_nchw_conv(const BeConfig *cf, const Node *n);
int64_t be_work_nchw_rows(const BeConfig *cf, const Node *n);
int64_t be_work_nchw_channels(const BeConfig *cf, const Node *n);
int64_t be_work_nchw_positions(const BeConfig *cf, const Node *n);
int64_t be_work_chunks(const BeConfig *cf, const Node *n); /* eltwise, any layout */
void be_emit_nchw_conv(BeCtx *c, KArgs *k);
void be_emit_nchw_maxpool(BeCtx *c, KArgs *k);
void be_emit_nchw_avgpool(BeCtx *c, KArgs *k);
void be_emit_nchw_adaptive_avgpool(BeCtx *c, KArgs *k);
void be_emit_nchw_adaptive_maxpool(BeCtx *c, KArgs *k);
void be_emit_nchw_affine(BeCtx *c, KArgs *k);
void be_emit_eltwise(BeCtx *c, KArgs *k); /* any layout */
void be_emit_nchw_lrn(BeCtx *c, KArgs *k);
void be_emit_nchw_concat(BeCtx *c, KArgs *k);
void be_emit_nchw_softmax(BeCtx *c, KArgs *k);
/* mul: inputs of one shape run as be_emit_eltwise; one value per channel
   of the other (the input be_mul_big_input is not) by channel planes. */
bool be_mul_same_shape(const BeConfig *cf, const Node *n);
int be_mul_big_input(const Node *n);
void be_emit_nchw_mul_channels(BeCtx *c, KArgs *k);
void be_emit_nchw_parameter(BeCtx *c, KArgs *k);
void be_emit_nchw_channel_shuffle(BeCtx *c, KArgs *k);
int64_t be_work_nchw_pixel_vectors(const BeConfig *cf, const Node *n); /* ceil(H*W / 16) */
void be_emit_nchw_layernorm(BeCtx *c, KArgs *k);

/* blocked.c: kernels on NCHW16c. */
int64_t be_work_conv_blocked(const BeConfig *cf, const Node *n);
void be_emit_conv_blocked(BeCtx *c, KArgs *k);
float *be_pack_conv_blocked(const BeConfig *cf, const Node *n);
int64_t be_packed_numel_conv_blocked(const BeConfig *cf, const Node *n); /* window groups: more */
int64_t be_work_blocks_rows(const BeConfig *cf, const Node *n);          /* (C/16) * OH */
int64_t be_work_blocks(const BeConfig *cf, const Node *n);               /* C/16 */
void be_emit_pool_blocked(BeCtx *c, KArgs *k);
void be_emit_adaptive_avgpool_blocked(BeCtx *c, KArgs *k);
void be_emit_adaptive_maxpool_blocked(BeCtx *c, KArgs *k);
void be_emit_affine_blocked(BeCtx *c, KArgs *k);
void be_emit_concat_blocked(BeCtx *c, KArgs *k);
void be_emit_mul_blocked(BeCtx *c, KArgs *k);
void be_emit_channel_shuffle_blocked(BeCtx *c, KArgs *k);
int64_t be_work_rows(const BeConfig *cf, const Node *n); /* H */
void be_emit_layernorm_blocked(BeCtx *c, KArgs *k);
int64_t be_work_reorder(const BeConfig *cf, const Node *n);
void be_emit_reorder(BeCtx *c, KArgs *k);

/* depthwise.c: depthwise convs (groups = channels) on NCHW16c, blocked
   input, when Tuning.depthwise is on. */
bool be_conv_depthwise_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_conv_depthwise(const BeConfig *cf, const Node *n);
void be_emit_conv_depthwise(BeCtx *c, KArgs *k);
float *be_pack_conv_depthwise(const BeConfig *cf, const Node *n);

/* grouped.c: grouped/depthwise convs on NCHW16c under the small-groups
   rule (ir_conv_small_groups). */
bool be_conv_grouped_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_conv_grouped(const BeConfig *cf, const Node *n);
void be_emit_conv_grouped(BeCtx *c, KArgs *k);
float *be_pack_conv_grouped(const BeConfig *cf, const Node *n);

/* winograd.c: 3x3, 1x7 and 7x1 stride-1 convs on NCHW16c when Tuning.winograd is on. */
bool be_conv_winograd_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_conv_winograd(const BeConfig *cf, const Node *n);
void be_emit_conv_winograd(BeCtx *c, KArgs *k);
int64_t be_packed_numel_winograd(const BeConfig *cf, const Node *n);
/* Whether n, under --precision=bf16, runs as F(4x4) Winograd with its
   transformed weights kept fp32 (a dpbf16 target; docs/precision.md). */
bool be_winograd_fp32_weights(const BeConfig *cf, const Node *n);
float *be_pack_conv_winograd(const BeConfig *cf, const Node *n);

/* gemm1x1.c: a 1x1 stride-1 unpadded ungrouped conv, NCHW in and out (not
   split), as a register-tiled GEMM. */
bool be_conv_gemm1x1_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_conv_gemm1x1(const BeConfig *cf, const Node *n);
void be_emit_conv_gemm1x1(BeCtx *c, KArgs *k);

/* linear.c: a linear layer on NCHW over nb samples `stride` floats apart
   (KArgs.nb, KArgs.stride): a batched kernel. */
bool be_linear_rows_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_linear_rows(const BeConfig *cf, const Node *n);
void be_emit_linear_rows(BeCtx *c, KArgs *k);
/* The fp32 kernel (not bf16): the weight packed in column blocks of 16
   features ([ceil(N/16)][K][16]); work item: a block. */
bool be_linear_blocks_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_linear_blocks(const BeConfig *cf, const Node *n);
int64_t be_packed_numel_linear(const BeConfig *cf, const Node *n);
float *be_pack_linear(const BeConfig *cf, const Node *n);
void be_emit_linear_blocks(BeCtx *c, KArgs *k);

/* int8.c: conv and linear layers marked by passes/quantize.c under
   --precision=int8, u8 x s8 -> int32 with AVX512-VNNI vpdpbusd; fp32 in
   and out. Work item: one output row (a linear: one). */
bool be_int8_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_int8(const BeConfig *cf, const Node *n);
void be_emit_int8(BeCtx *c, KArgs *k);
int64_t be_packed_numel_int8(const BeConfig *cf, const Node *n);
float *be_pack_int8(const BeConfig *cf, const Node *n);
/* The shared parts of the int8 kernels (int8.c, amx.c): a row of K
   weights quantized symmetrically to q[] in [-127, 127] (NaN to 0),
   returning its scale max|w| / 127 (1 for an all-zero row); and the u8 of
   a float or of 16 floats with n's input scale and zero point,
   clamp(rint(x / s) + z, 0, 255). */
float be_int8_weight_row(const float *w, int64_t K, int8_t *q);
/* n's int8 weights into dst (K per output channel): each row quantized by
   be_int8_weight_row, weight i (PyTorch's (c, kh, kw) order) of channel
   oc at byte pos(ctx, oc, i); after wbytes of weights, nmeta floats of
   dequantizing scale (input scale times the row's), nmeta int32 of zero-
   point correction (z times the row's sum), nmeta floats of bias. */
void be_int8_pack(const Node *n, int64_t K, float *dst, int64_t wbytes, int64_t nmeta,
                  int64_t (*pos)(const void *ctx, int64_t oc, int64_t i), const void *ctx);
LLVMValueRef be_int8_quant_byte(BeCtx *c, const Node *n, LLVMValueRef x);
LLVMValueRef be_int8_quant_vec(BeCtx *c, const Node *n, LLVMValueRef x);

/* amx.c: an ungrouped conv with an NCHW16c output under --precision=bf16
   on a target with AMX-BF16 (BeTarget.amx), or quantized (Node.quant)
   under --precision=int8 with AMX-INT8 (BeTarget.amx_int8); Tuning.amx. Work item: a band
   of output rows and a group of output-channel blocks. */
bool be_conv_amx_accepts(const BeConfig *cf, const Node *n);
int64_t be_work_conv_amx(const BeConfig *cf, const Node *n);
void be_emit_conv_amx(BeCtx *c, KArgs *k);
/* dpbf16 (amx.c): the same convs under --precision=bf16 on a target with
   AVX512_BF16 (BeTarget.avx512bf16) where AMX is absent or off, step 2 by
   vdpbf16ps into fp32 registers; Tuning.dpbf16. Work split and weight
   packing are the AMX kernel's (be_work_conv_amx, be_pack_amx). */
bool be_conv_dpbf16_accepts(const BeConfig *cf, const Node *n);
void be_emit_conv_dpbf16(BeCtx *c, KArgs *k);
int64_t be_packed_numel_amx(const BeConfig *cf, const Node *n);
float *be_pack_amx(const BeConfig *cf, const Node *n);
/* dpbf16's packing: be_pack_amx's, but a folded stem's values in the
   order of its vector conversion (channel-major). */
float *be_pack_dpbf16(const BeConfig *cf, const Node *n);

/* ---------------------------------------------------------------- kernels.c */

/* The decision for one node: its kernel (NULL: the node has none: dead,
   elided, a view or an input) and its number of work items. */
typedef struct {
  const KernelImpl *impl;
  int64_t work;
} BeChoice;

/* Whether impl is a batched kernel: its launch takes two more entries in
   ptrs after the slices, the number of samples and the floats between
   two samples' tensors, as integers (KArgs.nb, KArgs.stride); a launch
   for one sample passes 1 and 0. */
bool be_kernel_batched(const KernelImpl *impl);
/* Whether n runs a kernel at all (live, not elided, not a view or input). */
bool be_is_kernel_node(const Node *n);
/* Whether parameter `slot` of n is stored as bfloat16 (2 bytes per value):
   the weight of a conv or linear under --precision=bf16, but for the convs
   that run F(4x4) Winograd on a dpbf16 target (be_winograd_fp32_weights). */
bool be_param_bf16(const BeConfig *cf, const Node *n, int slot);
/* Decides every node's kernel, choice[n->id] for each node of g (an array
   of g->next_id entries). false with a message (an internal error) when a
   node has no kernel or its kernel cannot run it as the passes left it. */
bool be_choose_kernels(const BeConfig *cf, const Graph *g, BeChoice *choice, char *err,
                       size_t errlen);
/* The kernel function of n by its decision, emitted or shared. */
LLVMValueRef be_kernel_for(BeCtx *c, const Graph *g, const Node *n, const BeChoice *ch,
                           BeAlias alias, int inplace);
void be_kernel_cache_free(BeCtx *c);

/* ------------------------------------------------------------------- blob.c */

/* One parameter in the blob: read first by `owner`, stored packed by
   `packer` (NULL: as PyTorch lays it out), numel values at byte `offset`
   of the data (64-byte aligned), floats or (bf16) bfloat16s. */
typedef struct {
  Param *p;
  const Node *owner;
  const KernelImpl *packer;
  int64_t numel, offset;
  bool bf16;
} BlobEntry;

typedef struct {
  BlobEntry *e;
  int n;
  int64_t data_bytes; /* after the header */
} BlobLayout;

/* Lays out every parameter a kernel reads (sets Param.blob_offset); false
   with a message if one has no data. */
bool be_blob_layout(const BeConfig *cf, const Graph *g, const BeChoice *choice, BlobLayout *bl,
                    char *err, size_t errlen);
/* Writes the header and the packed data to path, reporting progress. */
bool be_blob_write(const BeConfig *cf, const BlobLayout *bl, const char *path, const char *build_id,
                   const ProgressHook *prog, char *err, size_t errlen);
void be_blob_free(BlobLayout *bl);
/* The build id (hex, CNNRT_BUILD_ID_LEN characters) of g once laid out. */
void be_build_id(const BeConfig *cf, const Graph *g, char out[CNNRT_BUILD_ID_LEN + 1]);

/* ----------------------------------------------------------------- target.c */

/* Creates the target machine for o (host triple and CPU unless overridden)
   and describes it in *t (t->cpu and t->features are malloc'd, the
   caller frees them). NULL + message on failure (an unknown triple, CPU or
   feature: a user error). */
LLVMTargetMachineRef be_target_machine(const BackendOptions *o, BeTarget *t, char *err,
                                       size_t errlen);
/* Whether "+name" is an item of the comma-separated LLVM feature list
   features (NULL: none). */
bool be_has_feature(const char *features, const char *name);
/* The description of a target (be_target_machine calls it): lanes,
   registers, FMA, VNNI, AMX, from the triple, and for x86-64 from the
   probe of a given CPU (probed_lanes > 0, probed_vnni and probed_amx* >=
   0) or the host's feature list. */
void be_target_describe(const BackendTarget *bt, const char *cpu, const char *features,
                        int probed_lanes, bool probed_fma, int probed_vnni, int probed_amx,
                        int probed_amx_int8, int probed_bf16dp, BeTarget *t);
/* Runs the optimization pipeline for opt_level. */
bool be_optimize(LLVMModuleRef m, LLVMTargetMachineRef tm, int opt_level, char *err, size_t errlen);
/* Emits an object or assembly file. */
bool be_emit_file(LLVMModuleRef m, LLVMTargetMachineRef tm, const char *path, bool assembly,
                  char *err, size_t errlen);
/* cc -shared -o out obj runtime -lm -lpthread ... for the host's triple,
   ld.lld -shared ... -L target_libdir -lm -lc for another; the linker's
   output on failure is copied into err. */
bool be_link_shared(const BackendOptions *o, const char *obj, const char *out, char *err,
                    size_t errlen);

#endif
