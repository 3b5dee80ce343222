/*
 * kernels.c: the kernel table, the one place where each node's kernel is
 * decided, and the kernel cache.
 *
 * Every row of `impls` is one kernel: the op and layout it serves, an
 * optional predicate for the nodes it accepts (NULL: all of them), how many
 * work items it splits into, its emitter, whether it applies a fused
 * epilogue, and, for the kernels that read their weight in an order of
 * their own, the packer and the packed size of that weight (NULL: the
 * weight as PyTorch lays it out). Rows are tried in order: the special
 * convs before the generic kernel of their layout.
 *
 * be_choose_kernels decides once per node, before anything is emitted:
 * the row (hence kernel, work split, weight packing and blob size), and
 * checks that the node is something that row can run (epilogue, split,
 * parameters). The blob (blob.c) packs weights by the decision; codegen.c
 * emits each node's kernel by it.
 *
 * Every kernel has the runtime's signature void(ptr ptrs, i64 lo, i64 hi)
 * (cnnrt_kernel_fn): it loads its tensor addresses from ptrs (output, inputs
 * in Node.in order, parameters in slot order, then a split node's slices)
 * and calls an always-inline body whose pointer arguments carry noalias
 * where the memory plan makes that true; the inliner turns those into
 * scoped alias metadata, so the vectorizer needs no runtime overlap checks.
 * [lo, hi) is a range of the kernel's work items (each kernel file says what
 * an item is), so the runtime can split them across threads in contiguous
 * chunks. Kernels whose key (op, shapes, attributes, epilogue, aliasing) is
 * equal are emitted once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_internal.h"

#define BE_MAX_PTRS BE_MAX_KERNEL_PTRS

/* ---------------------------------------------------------------- the table */

/* dpbf16, but not the convs Winograd takes on a dpbf16 target: on Zen 4
   (one thread, fastest of 30 calls) F(4x4) with fp32 weights ran
   ResNet-50's 3x3 convs at 56x56 and 28x28 in 0.57-0.61 ms against
   1.09-1.16 on dpbf16, GoogLeNet's F(2x2) layers at 14x14 with bf16
   weights in 0.67-0.80 against 0.81-0.90. */
static bool dpbf16_accepts(const BeConfig *cf, const Node *n) {
  if (be_bf16_dp_target(cf) && be_conv_winograd_accepts(cf, n))
    return false;
  return be_conv_dpbf16_accepts(cf, n);
}

static const KernelImpl impls[] = {
    /* --precision=bf16 and int8 convs on AMX tiles (amx.c) */
    {"amx", OP_CONV2D, LAYOUT_NCHW16C, be_conv_amx_accepts, be_work_conv_amx, be_emit_conv_amx,
     true, be_packed_numel_amx, be_pack_amx},
    /* --precision=bf16 convs by vdpbf16ps where AMX is absent or off (amx.c) */
    {"dpbf16", OP_CONV2D, LAYOUT_NCHW16C, dpbf16_accepts, be_work_conv_amx, be_emit_conv_dpbf16,
     true, be_packed_numel_amx, be_pack_dpbf16},
    /* --precision=int8: the layers passes/quantize.c marked (int8.c) */
    {"int8", OP_CONV2D, LAYOUT_NCHW, be_int8_accepts, be_work_int8, be_emit_int8, true,
     be_packed_numel_int8, be_pack_int8},
    {"int8", OP_CONV2D, LAYOUT_NCHW16C, be_int8_accepts, be_work_int8, be_emit_int8, true,
     be_packed_numel_int8, be_pack_int8},
    {"int8", OP_LINEAR, LAYOUT_NCHW, be_int8_accepts, be_work_int8, be_emit_int8, true,
     be_packed_numel_int8, be_pack_int8},
    /* 1x1 stride 1, NCHW in and out: a register-tiled GEMM (gemm1x1.c) */
    {"gemm1x1", OP_CONV2D, LAYOUT_NCHW, be_conv_gemm1x1_accepts, be_work_conv_gemm1x1,
     be_emit_conv_gemm1x1, true, NULL, NULL},
    /* depthwise convs on NCHW16c (depthwise.c) */
    {"depthwise16", OP_CONV2D, LAYOUT_NCHW16C, be_conv_depthwise_accepts, be_work_conv_depthwise,
     be_emit_conv_depthwise, true, NULL, be_pack_conv_depthwise},
    /* groups of 1-8 channels on NCHW16c (grouped.c) */
    {"grouped16", OP_CONV2D, LAYOUT_NCHW16C, be_conv_grouped_accepts, be_work_conv_grouped,
     be_emit_conv_grouped, true, NULL, be_pack_conv_grouped},
    /* 3x3, 5x5, 1x7/7x1 and 1x3/3x1 stride 1 by Winograd, when enabled (winograd.c) */
    {"winograd", OP_CONV2D, LAYOUT_NCHW16C, be_conv_winograd_accepts, be_work_conv_winograd,
     be_emit_conv_winograd, true, be_packed_numel_winograd, be_pack_conv_winograd},
    /* The generic kernel of every op on NCHW (nchw.c). */
    {"nchw", OP_CONV2D, LAYOUT_NCHW, NULL, be_work_nchw_conv, be_emit_nchw_conv, true, NULL, NULL},
    {"nchw", OP_MAXPOOL, LAYOUT_NCHW, NULL, be_work_nchw_rows, be_emit_nchw_maxpool, true, NULL,
     NULL},
    {"nchw", OP_AVGPOOL, LAYOUT_NCHW, NULL, be_work_nchw_rows, be_emit_nchw_avgpool, true, NULL,
     NULL},
    {"nchw", OP_ADAPTIVE_AVGPOOL, LAYOUT_NCHW, NULL, be_work_nchw_rows,
     be_emit_nchw_adaptive_avgpool, true, NULL, NULL},
    {"nchw", OP_ADAPTIVE_MAXPOOL, LAYOUT_NCHW, NULL, be_work_nchw_rows,
     be_emit_nchw_adaptive_maxpool, true, NULL, NULL},
    {"nchw", OP_BATCHNORM, LAYOUT_NCHW, NULL, be_work_nchw_channels, be_emit_nchw_affine, true,
     NULL, NULL},
    {"nchw", OP_SCALESHIFT, LAYOUT_NCHW, NULL, be_work_nchw_channels, be_emit_nchw_affine, true,
     NULL, NULL},
    {"nchw", OP_RELU, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_CLAMP, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_SIGMOID, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_HARDSIGMOID, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_HARDSWISH, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_SILU, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_GELU, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_SCALE, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_ADD, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_MEAN, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw", OP_MUL, LAYOUT_NCHW, be_mul_same_shape, be_work_chunks, be_emit_eltwise, true, NULL,
     NULL},
    {"nchw", OP_MUL, LAYOUT_NCHW, NULL, be_work_nchw_channels, be_emit_nchw_mul_channels, true,
     NULL, NULL},
    {"nchw", OP_PARAMETER, LAYOUT_NCHW, NULL, be_work_chunks, be_emit_nchw_parameter, false, NULL,
     NULL},
    {"nchw", OP_LAYERNORM, LAYOUT_NCHW, NULL, be_work_nchw_pixel_vectors, be_emit_nchw_layernorm,
     false, NULL, NULL},
    {"nchw", OP_LRN, LAYOUT_NCHW, NULL, be_work_nchw_channels, be_emit_nchw_lrn, true, NULL, NULL},
    /* linear layers over the rows of a batch (linear.c): every linear the IR
       has (rank 1 out, NCHW, never split); fp32 weights packed in column
       blocks ("blocks"), bf16 ones as PyTorch lays them out ("rows") */
    {"blocks", OP_LINEAR, LAYOUT_NCHW, be_linear_blocks_accepts, be_work_linear_blocks,
     be_emit_linear_blocks, true, be_packed_numel_linear, be_pack_linear},
    {"rows", OP_LINEAR, LAYOUT_NCHW, be_linear_rows_accepts, be_work_linear_rows,
     be_emit_linear_rows, true, NULL, NULL},
    {"nchw", OP_CONCAT, LAYOUT_NCHW, NULL, be_work_nchw_channels, be_emit_nchw_concat, false, NULL,
     NULL},
    {"nchw", OP_CHANNEL_SHUFFLE, LAYOUT_NCHW, NULL, be_work_nchw_channels,
     be_emit_nchw_channel_shuffle, false, NULL, NULL},
    {"nchw", OP_SOFTMAX, LAYOUT_NCHW, NULL, be_work_nchw_positions, be_emit_nchw_softmax, false,
     NULL, NULL},
    {"nchw", OP_REORDER, LAYOUT_NCHW, NULL, be_work_reorder, be_emit_reorder, false, NULL, NULL},
    /* The channel-blocked layout (blocked.c); elementwise ops do not care. */
    {"direct16", OP_CONV2D, LAYOUT_NCHW16C, NULL, be_work_conv_blocked, be_emit_conv_blocked, true,
     be_packed_numel_conv_blocked, be_pack_conv_blocked},
    {"nchw16c", OP_MAXPOOL, LAYOUT_NCHW16C, NULL, be_work_blocks_rows, be_emit_pool_blocked, true,
     NULL, NULL},
    {"nchw16c", OP_AVGPOOL, LAYOUT_NCHW16C, NULL, be_work_blocks_rows, be_emit_pool_blocked, true,
     NULL, NULL},
    {"nchw16c", OP_ADAPTIVE_AVGPOOL, LAYOUT_NCHW16C, NULL, be_work_blocks_rows,
     be_emit_adaptive_avgpool_blocked, true, NULL, NULL},
    {"nchw16c", OP_ADAPTIVE_MAXPOOL, LAYOUT_NCHW16C, NULL, be_work_blocks_rows,
     be_emit_adaptive_maxpool_blocked, true, NULL, NULL},
    {"nchw16c", OP_BATCHNORM, LAYOUT_NCHW16C, NULL, be_work_blocks, be_emit_affine_blocked, true,
     NULL, NULL},
    {"nchw16c", OP_SCALESHIFT, LAYOUT_NCHW16C, NULL, be_work_blocks, be_emit_affine_blocked, true,
     NULL, NULL},
    {"nchw16c", OP_RELU, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw16c", OP_CLAMP, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw16c", OP_SIGMOID, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL,
     NULL},
    {"nchw16c", OP_HARDSIGMOID, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL,
     NULL},
    {"nchw16c", OP_HARDSWISH, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL,
     NULL},
    {"nchw16c", OP_SILU, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw16c", OP_GELU, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw16c", OP_SCALE, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw16c", OP_ADD, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw16c", OP_MEAN, LAYOUT_NCHW16C, NULL, be_work_chunks, be_emit_eltwise, true, NULL, NULL},
    {"nchw16c", OP_MUL, LAYOUT_NCHW16C, be_mul_same_shape, be_work_chunks, be_emit_eltwise, true,
     NULL, NULL},
    {"nchw16c", OP_MUL, LAYOUT_NCHW16C, NULL, be_work_blocks, be_emit_mul_blocked, true, NULL,
     NULL},
    {"nchw16c", OP_LAYERNORM, LAYOUT_NCHW16C, NULL, be_work_rows, be_emit_layernorm_blocked, false,
     NULL, NULL},
    {"nchw16c", OP_CHANNEL_SHUFFLE, LAYOUT_NCHW16C, NULL, be_work_blocks,
     be_emit_channel_shuffle_blocked, false, NULL, NULL},
    {"nchw16c", OP_CONCAT, LAYOUT_NCHW16C, NULL, be_work_blocks, be_emit_concat_blocked, false,
     NULL, NULL},
    {"nchw16c", OP_REORDER, LAYOUT_NCHW16C, NULL, be_work_reorder, be_emit_reorder, false, NULL,
     NULL},
};

bool be_param_bf16(const BeConfig *cf, const Node *n, int slot) {
  return cf->precision == PRECISION_BF16 && slot == P_WEIGHT &&
         (n->op == OP_LINEAR || (n->op == OP_CONV2D && !be_winograd_fp32_weights(cf, n)));
}

bool be_kernel_batched(const KernelImpl *impl) {
  return impl->emit == be_emit_linear_rows || impl->emit == be_emit_linear_blocks;
}

bool be_is_kernel_node(const Node *n) {
  return !n->dead && !n->elided && !(ir_ops[n->op].flags & (OPF_VIEW | OPF_SOURCE));
}

/* The kernels that apply a fused gate to their input (Node.epi.gate;
   passes/fuse_gate.c fuses only into 1x1 convs reading NCHW16c, which one
   of them always accepts). */
static bool applies_gate(const KernelImpl *impl) {
  return impl->emit == be_emit_conv_blocked || impl->emit == be_emit_conv_amx ||
         impl->emit == be_emit_conv_dpbf16 || impl->emit == be_emit_int8;
}

static const KernelImpl *find_impl(const BeConfig *cf, const Node *n) {
  for (size_t i = 0; i < sizeof impls / sizeof impls[0]; i++)
    if (impls[i].op == n->op && impls[i].layout == n->layout &&
        (n->epi.gate < 0 || applies_gate(&impls[i])) &&
        (!impls[i].accepts || impls[i].accepts(cf, n)))
      return &impls[i];
  return NULL;
}

/* Whether the chosen kernel can run n as the passes left it. */
static bool check_node(const Graph *g, const Node *n, const KernelImpl *impl, char *err,
                       size_t errlen) {
  if (be_has_epilogue(n) && !impl->epilogue) {
    snprintf(err, errlen, "op '%s' (node '%s') cannot apply a fused epilogue", ir_ops[n->op].name,
             n->name);
    return false;
  }
  if (n->epi.residual >= n->nin) {
    snprintf(err, errlen, "node '%s': epilogue residual %d is not an input", n->name,
             n->epi.residual);
    return false;
  }
  if (n->epi.gate >= 0 && (n->epi.gate >= n->nin || n->epi.gate == 0 || !applies_gate(impl) ||
                           n->in[0]->layout != LAYOUT_NCHW16C)) {
    snprintf(err, errlen, "node '%s': kernel '%s' cannot apply the input gate %d", n->name,
             impl->name, n->epi.gate);
    return false;
  }
  int nseg = 0;
  free(ir_split_slices(g, n, &nseg));
  if (n->split && (nseg == 0 || n->op != OP_CONV2D || n->epi.residual >= 0)) {
    snprintf(err, errlen, "node '%s': a split %s must be a conv with slices and no residual",
             n->name, ir_ops[n->op].name);
    return false;
  }
  if (1 + n->nin + n->nparams + nseg > BE_MAX_PTRS) {
    snprintf(err, errlen, "node '%s' has too many inputs (%d)", n->name, n->nin);
    return false;
  }
  if (n->op == OP_CONV2D || n->op == OP_LINEAR) {
    if (!n->params[P_WEIGHT] || (n->attr.has_bias != (n->nparams > P_BIAS && n->params[P_BIAS]))) {
      snprintf(err, errlen, "node '%s': parameters do not match has_bias", n->name);
      return false;
    }
  }
  return true;
}

bool be_choose_kernels(const BeConfig *cf, const Graph *g, BeChoice *choice, char *err,
                       size_t errlen) {
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    BeChoice *ch = &choice[n->id];
    memset(ch, 0, sizeof *ch);
    if (!be_is_kernel_node(n))
      continue;
    ch->impl = find_impl(cf, n);
    if (!ch->impl) {
      snprintf(err, errlen, "no kernel for op '%s' in layout %d (node '%s')", ir_ops[n->op].name,
               (int)n->layout, n->name);
      return false;
    }
    if (!check_node(g, n, ch->impl, err, errlen))
      return false;
    ch->work = ch->impl->work(cf, n);
  }
  return true;
}

/* ------------------------------------------------------------ kernel cache */

typedef struct BeKernelCache {
  struct BeKernelCache *next;
  char *key;
  LLVMValueRef fn;
} BeKernelCache;

static void shape_key(FILE *f, const Shape *s) {
  fprintf(f, "[");
  for (int i = 0; i < s->rank; i++)
    fprintf(f, "%s%lld", i ? "x" : "", (long long)s->d[i]);
  fprintf(f, "]");
}

/* Everything the generated code of n depends on: not its name, not its
   tensors' addresses (those come through ptrs). */
static char *kernel_key(const Node *n, BeAlias alias, int inplace, Node **segs, int nseg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  const Attrs *a = &n->attr;
  fprintf(f, "%s l%d al%d ip%d out", ir_ops[n->op].name, (int)n->layout, (int)alias, inplace);
  shape_key(f, &n->shape);
  for (int i = 0; i < n->nin; i++) {
    fprintf(f, " in%d", (int)n->in[i]->layout);
    shape_key(f, &n->in[i]->shape);
  }
  for (int i = 0; i < nseg; i++)
    fprintf(f, " seg%lld+%lld", (long long)segs[i]->attr.slice_begin,
            (long long)segs[i]->shape.d[0]);
  fprintf(f, " p");
  for (int i = 0; i < n->nparams; i++)
    fprintf(f, "%d", n->params[i] != NULL);
  fprintf(f,
          " oc%lld k%lldx%lld s%lldx%lld p%lld,%lld,%lld,%lld d%lldx%lld g%lld "
          "b%d eps%a cm%d cip%d o%lldx%lld lrn%lld %a %a %a of%lld ax%d sc%a "
          "epi%d,%d,%a,%a,%d",
          (long long)a->out_channels, (long long)a->kernel[0], (long long)a->kernel[1],
          (long long)a->stride[0], (long long)a->stride[1], (long long)a->pad[0],
          (long long)a->pad[1], (long long)a->pad[2], (long long)a->pad[3],
          (long long)a->dilation[0], (long long)a->dilation[1], (long long)a->groups, a->has_bias,
          (double)a->eps, a->ceil_mode, a->count_include_pad, (long long)a->out_hw[0],
          (long long)a->out_hw[1], (long long)a->lrn_size, (double)a->alpha, (double)a->beta,
          (double)a->k, (long long)a->out_features, a->axis, (double)a->scale, n->epi.residual,
          (int)n->epi.act.kind, (double)n->epi.act.a, (double)n->epi.act.b, n->epi.gate);
  /* the attributes of the ops after the classic ones */
  fprintf(f, " lw%d pf%lld sl%lld,%lld ch%lld,%lld cl%a,%a hs%a,%a gt%d ps", a->linear_weight,
          (long long)a->padded_from, (long long)a->slice_begin, (long long)a->slice_end,
          (long long)a->chunks, (long long)a->chunk_index, (double)a->clamp_min,
          (double)a->clamp_max, (double)a->hs_alpha, (double)a->hs_beta, a->gelu_tanh);
  shape_key(f, &a->param_shape);
  if (n->quant) /* int8: the input's scale and zero point are constants */
    fprintf(f, " q%a,%d", (double)n->qscale, n->qzero);
  fclose(f);
  return buf;
}

void be_kernel_cache_free(BeCtx *c) {
  for (BeKernelCache *e = c->cache, *nx; e; e = nx) {
    nx = e->next;
    free(e->key);
    free(e);
  }
  c->cache = NULL;
}

/* ------------------------------------------------------------- kernel build */

static LLVMValueRef build_kernel(BeCtx *c, const Node *n, const KernelImpl *impl, BeAlias alias,
                                 int inplace, Node **segs, int nseg) {
  int nfix = 1 + n->nin + n->nparams;
  int np = nfix + nseg;
  int nx = be_kernel_batched(impl) ? 2 : 0; /* nb, stride after lo, hi */
  char name[256];
  snprintf(name, sizeof name, "%s.%s", ir_ops[n->op].name, n->name);

  /* The body: void(ptr out, ptr in..., ptr param..., i64 lo, i64 hi). */
  LLVMTypeRef bt[BE_MAX_PTRS + 4];
  for (int i = 0; i < np; i++)
    bt[i] = c->t_ptr;
  for (int i = 0; i < 2 + nx; i++)
    bt[np + i] = c->t_i64;
  LLVMTypeRef body_ty = LLVMFunctionType(c->t_void, bt, (unsigned)(np + 2 + nx), 0);
  char bname[280];
  snprintf(bname, sizeof bname, "%s.body", name);
  LLVMValueRef body = LLVMAddFunction(c->mod, bname, body_ty);
  LLVMSetLinkage(body, LLVMInternalLinkage);
  be_func_attrs(c, body);
  be_add_enum_attr(c, body, LLVMAttributeFunctionIndex, "alwaysinline");
  for (int i = 0; i < np; i++) {
    bool is_param = i > n->nin && i < nfix;
    bool is_out = i == 0, is_in = i >= 1 && i <= n->nin;
    bool noalias =
        is_param || (alias == BE_DISJOINT) || (alias == BE_INPLACE && is_in && i - 1 != inplace);
    if (noalias)
      be_add_enum_attr(c, body, (unsigned)i + 1, "noalias");
    if (is_param || (is_in && alias != BE_OVERLAP && !(alias == BE_INPLACE && i - 1 == inplace)))
      be_add_enum_attr(c, body, (unsigned)i + 1, "readonly");
    be_add_enum_attr(c, body, (unsigned)i + 1, "nocapture");
    (void)is_out;
  }

  LLVMValueRef in[BE_MAX_PTRS], par[IR_MAX_PARAMS], seg[BE_MAX_PTRS];
  int64_t seg_begin[BE_MAX_PTRS], seg_count[BE_MAX_PTRS];
  be_func_begin(c, body);
  KArgs k = {.n = n,
             .in = in,
             .par = par,
             .nseg = nseg,
             .seg = seg,
             .seg_begin = seg_begin,
             .seg_count = seg_count,
             .wbf16 = be_param_bf16(c->cfg, n, P_WEIGHT)};
  for (int s = 0; s < nseg; s++) {
    seg[s] = LLVMGetParam(body, (unsigned)(nfix + s));
    seg_begin[s] = segs[s]->attr.slice_begin;
    seg_count[s] = segs[s]->shape.d[0];
  }
  k.out = LLVMGetParam(body, 0);
  for (int i = 0; i < n->nin; i++)
    in[i] = LLVMGetParam(body, (unsigned)(1 + i));
  for (int i = 0; i < n->nparams; i++)
    par[i] = n->params[i] ? LLVMGetParam(body, (unsigned)(1 + n->nin + i)) : NULL;
  if (alias == BE_INPLACE)
    k.out = in[inplace]; /* one SSA value: the vectorizer sees distance 0 */
  k.res = n->epi.residual >= 0 ? in[n->epi.residual] : NULL;
  k.gate = n->epi.gate >= 0 ? in[n->epi.gate] : NULL;
  k.lo = LLVMGetParam(body, (unsigned)np);
  k.hi = LLVMGetParam(body, (unsigned)np + 1);
  if (nx) {
    k.nb = LLVMGetParam(body, (unsigned)np + 2);
    k.stride = LLVMGetParam(body, (unsigned)np + 3);
  }
  impl->emit(c, &k);
  LLVMBuildRetVoid(c->b);

  /* The wrapper with the runtime's signature. */
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, c->t_kernel);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  be_func_attrs(c, fn);
  be_func_begin(c, fn);
  LLVMValueRef ptrs = LLVMGetParam(fn, 0);
  LLVMValueRef args[BE_MAX_PTRS + 4];
  for (int i = 0; i < np + nx; i++) {
    LLVMValueRef idx = be_i64(c, i);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->t_ptr, ptrs, &idx, 1, "");
    args[i < np ? i : i + 2] = LLVMBuildLoad2(c->b, c->t_ptr, p, "");
    if (i >= np) /* nb, stride: integers in pointer-sized slots */
      args[i + 2] = LLVMBuildPtrToInt(c->b, args[i + 2], c->t_i64, "");
  }
  args[np] = LLVMGetParam(fn, 1);
  args[np + 1] = LLVMGetParam(fn, 2);
  LLVMBuildCall2(c->b, body_ty, body, args, (unsigned)(np + 2 + nx), "");
  LLVMBuildRetVoid(c->b);
  return fn;
}

LLVMValueRef be_kernel_for(BeCtx *c, const Graph *g, const Node *n, const BeChoice *ch,
                           BeAlias alias, int inplace) {
  int nseg = 0;
  Node **segs = ir_split_slices(g, n, &nseg);
  char *key = kernel_key(n, alias, inplace, segs, nseg);
  for (BeKernelCache *e = c->cache; e; e = e->next)
    if (strcmp(e->key, key) == 0) {
      free(key);
      free(segs);
      c->nshared++;
      return e->fn;
    }
  BeKernelCache *e = xcalloc(1, sizeof *e);
  e->key = key;
  e->fn = build_kernel(c, n, ch->impl, alias, inplace, segs, nseg);
  free(segs);
  e->next = c->cache;
  c->cache = e;
  c->nkernels++;
  return e->fn;
}
