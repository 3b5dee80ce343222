/*
 * codegen.c: backend_compile, the driver of the backend, and the module's
 * own code: the forward function and the globals the runtime reads.
 *
 * backend_compile runs one planned graph through these steps, each a
 * function below:
 *   1. preflight      the output's directory, the runtime library, every
 *                     tensor's planned storage;
 *   2. target         the LLVM target machine and the target description
 *                     (BeTarget) the kernel plans read;
 *   3. kernels        one decision per node (kernels.c: be_choose_kernels);
 *   4. weights        the blob laid out and written (blob.c) where it goes:
 *                     a private work directory when it is embedded through
 *                     module-level `.incbin` (the hidden symbol cnnrt_blob
 *                     in .rodata), or beside the output (OUTPUT.weights for
 *                     --external-weights; OUTPUT.blob for .ll/.s, which
 *                     name it by absolute path);
 *   5. module         the LLVM context and module;
 *   6. emission       one kernel per node, shared between identical nodes
 *                     (kernels.c); cnnrt_forward(ctx, weights, arena,
 *                     inputs, outputs), which per node fills a stack array
 *                     of the node's pointers (output, inputs, parameters,
 *                     slices) and calls cnnrt_launch(ctx, kernel, ptrs,
 *                     work, layer), then copies the graph outputs out;
 *                     cnnrt_forward_head and cnnrt_forward_tail, the same
 *                     split at the batched tail (see "the batched tail");
 *                     the
 *                     constant globals cnnrt_info (laid out as cnn_info),
 *                     cnnrt_blob_size, cnnrt_build_id and the layer table
 *                     of the profiler; then LLVMVerifyModule;
 *   7. optimization   LLVM's default<On> pipeline (target.c);
 *   8. output         .ll, .s, .o, or a .so linked with the runtime;
 *   9. publish        everything renamed into place at once, or, on any
 *                     failure, every file this run made removed.
 * Tensor addresses come from Node.mem: MEM_INPUT -> inputs[index],
 * MEM_ARENA -> arena + offset, MEM_ALIAS -> the aliased tensor's address +
 * offset. Each step is reported to BackendOptions.progress
 * (support/progress.h): the bytes of the blob written, the layers whose
 * kernel exists, and LLVM's steps as busy (LLVM reports no progress).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>

#include "../runtime/cnnrt.h"
#include "../support/files.h"
#include "backend_internal.h"

#ifndef CNNCC_VERSION
#define CNNCC_VERSION "0.0"
#endif

/* ------------------------------------------------------------------- errors */

typedef struct {
  Diag *d;
  int rc; /* 0, 1 (user), 2 (internal) */
} Status;

__attribute__((format(printf, 3, 4))) static void fail(Status *st, int rc, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (st->d)
    diag_plain(st->d, DIAG_ERROR, "%s%s", rc == 2 ? "internal error: " : "", buf);
  else
    fprintf(stderr, "cnncc: error: %s\n", buf);
  if (st->rc == 0)
    st->rc = rc;
}

/* ------------------------------------------------------------ memory plan */

/* A tensor's storage: space 0 = arena, k >= 1 = host input k-1. */
typedef struct {
  int space;
  int64_t off, bytes;
} Loc;

static bool resolve(const Graph *g, const Node *n, Loc *l, Status *st) {
  int64_t off = 0;
  const Node *m = n;
  for (int depth = 0;; depth++) {
    if (depth > 10000) {
      fail(st, 2, "memory plan: alias cycle at '%s'", n->name);
      return false;
    }
    switch (m->mem.kind) {
    case MEM_NONE:
      fail(st, 2, "memory plan: node '%s' has no planned storage (plan_memory did not run?)",
           m->name);
      return false;
    case MEM_INPUT:
      if (m->mem.index < 0 || m->mem.index >= g->ninputs) {
        fail(st, 2, "memory plan: node '%s' is input %d of %d", m->name, m->mem.index, g->ninputs);
        return false;
      }
      l->space = 1 + m->mem.index;
      l->off = off;
      l->bytes = shape_numel(&n->shape) * 4;
      return true;
    case MEM_ARENA:
      l->space = 0;
      l->off = off + m->mem.offset;
      l->bytes = shape_numel(&n->shape) * 4;
      if (l->off < 0 || l->off + l->bytes > g->arena_bytes) {
        fail(st, 2, "memory plan: '%s' [%lld, +%lld) is outside the %lld-byte arena", n->name,
             (long long)l->off, (long long)l->bytes, (long long)g->arena_bytes);
        return false;
      }
      return true;
    case MEM_ALIAS:
      if (!m->mem.alias_of) {
        fail(st, 2, "memory plan: '%s' aliases nothing", m->name);
        return false;
      }
      off += m->mem.offset;
      m = m->mem.alias_of;
      break;
    }
  }
}

static bool overlaps(const Loc *a, const Loc *b) {
  return a->space == b->space && a->off < b->off + b->bytes && b->off < a->off + a->bytes;
}

/* How the output of n may alias its inputs (kernels.c's noalias rules). */
static bool alias_mode(const Graph *g, const Node *n, BeAlias *mode, int *inplace, Status *st) {
  Loc o, in;
  if (n->split) {
    /* Each slice has storage of its own, live across this step, so none
       overlaps the input (the planner keeps the input live here too). */
    *mode = BE_DISJOINT;
    *inplace = -1;
    return true;
  }
  if (!resolve(g, n, &o, st))
    return false;
  if (o.space != 0) {
    fail(st, 2, "memory plan: node '%s' would write into a host input", n->name);
    return false;
  }
  *mode = BE_DISJOINT;
  *inplace = -1;
  int noverlap = 0;
  for (int i = 0; i < n->nin; i++) {
    if (!resolve(g, n->in[i], &in, st))
      return false;
    if (!overlaps(&o, &in))
      continue;
    noverlap++;
    bool exact = in.off == o.off && in.bytes == o.bytes;
    if (n->op == OP_CONCAT) {
      *mode = BE_OVERLAP;
    } else if ((ir_ops[n->op].flags & OPF_ELTWISE) && exact) {
      if (*inplace < 0)
        *inplace = i;
    } else {
      fail(st, 2,
           "memory plan: the output of '%s' overlaps its input '%s' "
           "(only elementwise ops may run in place)",
           n->name, n->in[i]->name);
      return false;
    }
  }
  if (*mode != BE_OVERLAP && *inplace >= 0)
    *mode = noverlap == 1 ? BE_INPLACE : BE_OVERLAP;
  if (*mode != BE_INPLACE)
    *inplace = -1;
  return true;
}

/* -------------------------------------------------------------- the module */

static LLVMValueRef const_string(BeCtx *c, const char *s, const char *name) {
  LLVMValueRef init = LLVMConstStringInContext(c->ctx, s, (unsigned)strlen(s), 0);
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  return g;
}

static LLVMValueRef hidden_const(BeCtx *c, const char *name, LLVMValueRef init) {
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetVisibility(g, LLVMHiddenVisibility);
  return g;
}

static LLVMValueRef tensor_descs(BeCtx *c, LLVMTypeRef desc_ty, const GraphIO *io, int n,
                                 const char *name) {
  LLVMValueRef *el = calloc((size_t)(n ? n : 1), sizeof *el);
  for (int i = 0; i < n; i++) {
    const Shape *s = &io[i].node->shape;
    int64_t dims[8] = {1};
    int rank;
    if (s->rank == 3) {
      rank = 4;
      dims[1] = s->d[0], dims[2] = s->d[1], dims[3] = s->d[2];
    } else {
      rank = 2;
      dims[1] = shape_numel(s);
    }
    LLVMValueRef dv[8];
    for (int k = 0; k < 8; k++)
      dv[k] = be_i64(c, dims[k]);
    char nm[64];
    snprintf(nm, sizeof nm, "%s.name.%d", name, i);
    LLVMValueRef f[3] = {const_string(c, io[i].name ? io[i].name : io[i].node->name, nm),
                         be_i32(c, rank), LLVMConstArray2(c->t_i64, dv, 8)};
    el[i] = LLVMConstNamedStruct(desc_ty, f, 3);
  }
  LLVMValueRef init = LLVMConstArray2(desc_ty, el, (uint64_t)n);
  free(el);
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  return g;
}

static void emit_info(BeCtx *c, Graph *g, const BackendOptions *o, int64_t weight_bytes,
                      uint64_t blob_size, const char *build_id) {
  /* cnn_tensor_desc { ptr name; i32 rank; [8 x i64] dims } and cnn_info,
     with the target's natural alignment exactly as the C compiler lays them
     out. */
  LLVMTypeRef arr8 = LLVMArrayType2(c->t_i64, 8);
  LLVMTypeRef desc_ty = LLVMStructCreateNamed(c->ctx, "cnn_tensor_desc");
  LLVMTypeRef df[3] = {c->t_ptr, c->t_i32, arr8};
  LLVMStructSetBody(desc_ty, df, 3, 0);
  LLVMTypeRef info_ty = LLVMStructCreateNamed(c->ctx, "cnn_info");
  LLVMTypeRef inf[11] = {c->t_i32, c->t_ptr, c->t_i32, c->t_i32, c->t_ptr, c->t_ptr,
                         c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_ptr};
  LLVMStructSetBody(info_ty, inf, 11, 0);

  LLVMValueRef ins = tensor_descs(c, desc_ty, g->inputs, g->ninputs, "cnnrt.inputs");
  LLVMValueRef outs = tensor_descs(c, desc_ty, g->outputs, g->noutputs, "cnnrt.outputs");
  LLVMValueRef v[11] = {
      be_i32(c, CNN_ABI_VERSION),
      const_string(c, g->name ? g->name : "net", "cnnrt.name"),
      be_i32(c, g->ninputs),
      be_i32(c, g->noutputs),
      ins,
      outs,
      be_i64(c, (int64_t)g->num_params_orig),
      be_i64(c, (int64_t)(g->macs_orig ? g->macs_orig : ir_graph_macs(g))),
      be_i64(c, weight_bytes),
      be_i64(c, g->arena_bytes),
      const_string(c, o->compiler_ident ? o->compiler_ident : "cnncc " CNNCC_VERSION,
                   "cnnrt.compiler"),
  };
  hidden_const(c, "cnnrt_info", LLVMConstNamedStruct(info_ty, v, 11));
  hidden_const(c, "cnnrt_blob_size", be_i64(c, (int64_t)blob_size));
  /* an AMX kernel (amx.c) defines the tile configuration */
  hidden_const(c, "cnnrt_uses_amx",
               be_i32(c, LLVMGetNamedGlobal(c->mod, "cnncc.amx.tilecfg") != NULL));
  char id[40] = {0};
  memcpy(id, build_id, strlen(build_id));
  hidden_const(c, "cnnrt_build_id", LLVMConstStringInContext(c->ctx, id, 40, 1));
}

/* The assembly that defines cnnrt_blob from the blob file (malloc'd). */
static char *blob_asm(const char *blob_path, uint64_t size) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  fprintf(f, ".pushsection .rodata.cnnrt_blob,\"a\",@progbits\n"
             ".p2align 6\n"
             ".globl cnnrt_blob\n"
             ".hidden cnnrt_blob\n"
             ".type cnnrt_blob,@object\n"
             "cnnrt_blob:\n"
             ".incbin \"");
  for (const char *p = blob_path; *p; p++) {
    if (*p == '"' || *p == '\\')
      fputc('\\', f);
    fputc(*p, f);
  }
  fprintf(f,
          "\"\n"
          ".size cnnrt_blob, %llu\n"
          ".popsection\n",
          (unsigned long long)size);
  fclose(f);
  return text;
}

/* cnnrt_blob: the blob file through module-level .incbin, or (external
   weights) a placeholder the runtime never reads. */
static void emit_blob_symbol(BeCtx *c, const char *blob_path, uint64_t size) {
  if (!blob_path) {
    LLVMTypeRef t = LLVMArrayType2(c->t_i8, 64);
    LLVMValueRef g = hidden_const(c, "cnnrt_blob", LLVMConstNull(t));
    LLVMSetAlignment(g, 64);
    return;
  }
  char *text = blob_asm(blob_path, size);
  LLVMSetModuleInlineAsm2(c->mod, text, strlen(text));
  free(text);
}

/* Textual assembly output would expand the .incbin into hundreds of MB of
   .byte lines: there the directive is appended to the .s instead. */
static bool append_blob_asm(const char *path, const char *blob_path, uint64_t size) {
  FILE *f = fopen(path, "a");
  if (!f)
    return false;
  char *text = blob_asm(blob_path, size);
  fprintf(f, "\n# the packed weights (cnnrt.h: CnnrtBlobHeader, then data)\n%s", text);
  free(text);
  return fclose(f) == 0;
}

/* ------------------------------------------------------ the batched tail

   The batched tail (cnnrt.h): the nodes from the first batched kernel
   (be_kernel_batched: a linear layer) on, when every kernel from there to
   the end has a feature vector (rank 1) for its output, run once for up to
   BE_TAIL_TILE samples at a time instead of once per sample. Their
   tensors, the tail's inputs and the graph outputs live in a slot per
   sample: the ranges of the arena (or of a host input the tail reads)
   they occupy, merged where they overlap
   and packed one after the other (keeping each range's offset modulo 64,
   so alignment and every overlap the memory plan made, in-place and
   aliases, stay as they were). cnnrt_forward_head runs the other nodes
   on the arena and copies those ranges into the sample's slot;
   cnnrt_forward_tail runs the tail for the nb slots: a batched kernel
   once for all of them, any other kernel once per slot; then copies the
   outputs out. */
#define BE_TAIL_TILE 8
#define BE_TAIL_MAX_SLOT (4 << 20) /* bytes: a bigger tail stays per sample */

typedef struct {
  int space;              /* 0: the arena; k >= 1: host input k - 1 */
  int64_t off, bytes, to; /* range [off, off + bytes) of it -> slot offset to */
} TailRange;

typedef struct {
  int start; /* index in g->nodes of the first tail node; -1: no tail */
  TailRange *r;
  int nr;
  int64_t slot; /* bytes of one sample's slot, a multiple of 64 */
} Tail;

/* Where tensors are for the code being emitted: the arena (or, tail != NULL,
   the slot of one sample, arena offsets mapped by the tail's ranges) and
   the host inputs. */
typedef struct {
  LLVMValueRef base;
  LLVMValueRef *in_ptrs;
  const Tail *tail;
} Addr;

static int cmp_range(const void *a, const void *b) {
  const TailRange *x = a, *y = b;
  if (x->space != y->space)
    return x->space < y->space ? -1 : 1;
  return x->off < y->off ? -1 : x->off > y->off;
}

/* Adds n's storage to the ranges (a host input the tail reads too: the
   head copies it into the slot). */
static bool tail_add(const Graph *g, const Node *n, Tail *t, int *cap, Status *st) {
  Loc l;
  if (!resolve(g, n, &l, st))
    return false;
  if (t->nr == *cap) {
    *cap = *cap ? 2 * *cap : 16;
    t->r = xrealloc(t->r, (size_t)*cap * sizeof *t->r);
  }
  t->r[t->nr++] = (TailRange){l.space, l.off, l.bytes, 0};
  return true;
}

/* The tail's ranges merged and laid out in a slot; false if the slot
   would be too big. */
static bool tail_layout(Tail *t) {
  qsort(t->r, (size_t)t->nr, sizeof *t->r, cmp_range);
  int m = 0;
  for (int i = 0; i < t->nr; i++) {
    if (m > 0 && t->r[i].space == t->r[m - 1].space &&
        t->r[i].off < t->r[m - 1].off + t->r[m - 1].bytes) {
      int64_t end = t->r[i].off + t->r[i].bytes;
      if (end > t->r[m - 1].off + t->r[m - 1].bytes)
        t->r[m - 1].bytes = end - t->r[m - 1].off;
    } else {
      t->r[m++] = t->r[i];
    }
  }
  t->nr = m;
  int64_t at = 0;
  for (int i = 0; i < m; i++) {
    t->r[i].to = ((at + 63) & ~(int64_t)63) + (t->r[i].off & 63);
    at = t->r[i].to + t->r[i].bytes;
  }
  t->slot = (at + 63) & ~(int64_t)63;
  return t->slot > 0 && t->slot <= BE_TAIL_MAX_SLOT;
}

/* Finds the batched tail of g (t->start = -1 if it has none). */
static bool find_tail(const Graph *g, const BeChoice *choice, Tail *t, Status *st) {
  memset(t, 0, sizeof *t);
  t->start = -1;
  int len = g->nodes.len, s = len;
  for (int i = len - 1; i >= 0; i--) {
    const Node *n = GRAPH_NODE(g, i);
    if (!choice[n->id].impl)
      continue;
    if (n->shape.rank != 1 || n->split)
      break;
    s = i;
  }
  while (s < len && !(choice[GRAPH_NODE(g, s)->id].impl &&
                      be_kernel_batched(choice[GRAPH_NODE(g, s)->id].impl)))
    s++;
  if (s == len)
    return true;
  int cap = 0;
  for (int i = s; i < len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (!choice[n->id].impl)
      continue;
    if (!tail_add(g, n, t, &cap, st))
      return false;
    for (int k = 0; k < n->nin; k++)
      if (!tail_add(g, n->in[k], t, &cap, st))
        return false;
  }
  for (int i = 0; i < g->noutputs; i++)
    if (!tail_add(g, g->outputs[i].node, t, &cap, st))
      return false;
  if (tail_layout(t)) {
    t->start = s;
    return true;
  }
  free(t->r);
  memset(t, 0, sizeof *t);
  t->start = -1;
  return true;
}

/* The address of node n's tensor in the function being emitted. */
static LLVMValueRef tensor_addr(BeCtx *c, const Graph *g, const Node *n, const Addr *a,
                                Status *st) {
  Loc l;
  if (!resolve(g, n, &l, st))
    return NULL;
  LLVMValueRef base = l.space == 0 || a->tail ? a->base : a->in_ptrs[l.space - 1];
  if (a->tail) {
    const TailRange *r = NULL;
    for (int i = 0; i < a->tail->nr && !r; i++)
      if (l.space == a->tail->r[i].space && l.off >= a->tail->r[i].off &&
          l.off + l.bytes <= a->tail->r[i].off + a->tail->r[i].bytes)
        r = &a->tail->r[i];
    if (!r) {
      fail(st, 2, "batched tail: '%s' is outside the tail's slot", n->name);
      return NULL;
    }
    l.off = r->to + (l.off - r->off);
  }
  if (l.off == 0)
    return base;
  LLVMValueRef off = be_i64(c, l.off);
  return LLVMBuildInBoundsGEP2(c->b, c->t_i8, base, &off, 1, "");
}

/* The bytes a layer moves at least, per sample: each distinct input and
   its output once, and its parameters, float32 (cnnrt_layer_bytes: the
   profiler's GB/s, what bounds a depthwise conv or a GEMV over the memory
   bandwidth; the trace shows them). */
static int64_t layer_bytes(const Node *n) {
  int64_t b = shape_numel(&n->shape);
  for (int i = 0; i < n->nin; i++) {
    bool seen = false;
    for (int j = 0; j < i; j++)
      seen |= n->in[j] == n->in[i];
    if (!seen)
      b += shape_numel(&n->in[i]->shape);
  }
  for (int i = 0; i < n->nparams; i++)
    if (n->params[i])
      b += param_numel(n->params[i]);
  return 4 * b;
}

/* "name\top\tkernel" (cnnrt.h's cnnrt_layer_names): the op with "/16c" on
   the blocked layout, and the kernel table's row that runs it. */
static LLVMValueRef layer_name(BeCtx *c, const Node *n, const KernelImpl *impl, int layer) {
  char *nm = xasprintf("%s\t%s%s\t%s", n->name, ir_ops[n->op].name,
                       n->layout == LAYOUT_NCHW16C ? "/16c" : "", impl->name);
  char gname[64];
  snprintf(gname, sizeof gname, "cnnrt.layer.%d", layer);
  LLVMValueRef init = LLVMConstStringInContext(c->ctx, nm, (unsigned)strlen(nm), 0);
  LLVMValueRef gs = LLVMAddGlobal(c->mod, LLVMTypeOf(init), gname);
  LLVMSetInitializer(gs, init);
  LLVMSetGlobalConstant(gs, 1);
  LLVMSetLinkage(gs, LLVMPrivateLinkage);
  free(nm);
  return gs;
}

/* The pointers node n's kernel takes (output, inputs, parameters, slices)
   stored into the ptrs array; false if an address cannot be resolved. */
static bool store_kernel_ptrs(BeCtx *c, const Graph *g, const Node *n, LLVMValueRef ptrs,
                              LLVMValueRef weights, const Addr *a, Status *st) {
  LLVMValueRef vals[BE_MAX_KERNEL_PTRS];
  int np = 0;
  vals[np++] = n->split ? LLVMConstNull(c->t_ptr) : tensor_addr(c, g, n, a, st);
  for (int k = 0; k < n->nin; k++)
    vals[np++] = tensor_addr(c, g, n->in[k], a, st);
  for (int k = 0; k < n->nparams; k++) {
    const Param *p = n->params[k];
    if (!p) {
      vals[np++] = LLVMConstNull(c->t_ptr);
      continue;
    }
    LLVMValueRef off = be_i64(c, p->blob_offset);
    vals[np++] =
        p->blob_offset ? LLVMBuildInBoundsGEP2(c->b, c->t_i8, weights, &off, 1, "") : weights;
  }
  int nseg = 0;
  Node **segs = ir_split_slices(g, n, &nseg);
  for (int s = 0; s < nseg; s++)
    vals[np++] = tensor_addr(c, g, segs[s], a, st);
  free(segs);
  for (int k = 0; k < np; k++) {
    if (!vals[k])
      return false;
    LLVMValueRef idx = be_i64(c, k);
    LLVMBuildStore(c->b, vals[k], LLVMBuildInBoundsGEP2(c->b, c->t_ptr, ptrs, &idx, 1, ""));
  }
  return true;
}

/* The kernel of every node (each moves the builder into its own function);
   fns[node id]. The most pointers one launch takes go to *maxp. */
static bool emit_kernels(BeCtx *c, Graph *g, const BeChoice *choice, LLVMValueRef *fns, int *maxp,
                         Status *st, const ProgressHook *prog) {
  int nk = 0, k_done = 0;
  for (int i = 0; i < g->nodes.len; i++)
    nk += choice[GRAPH_NODE(g, i)->id].impl != NULL;
  progress_report(prog, "generating kernels", 0, nk, "layers");
  *maxp = 1;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    const BeChoice *ch = &choice[n->id];
    if (!ch->impl)
      continue;
    BeAlias mode;
    int inplace;
    if (!alias_mode(g, n, &mode, &inplace, st))
      return false;
    fns[n->id] = be_kernel_for(c, g, n, ch, mode, inplace);
    int nseg = 0;
    free(ir_split_slices(g, n, &nseg));
    if (1 + n->nin + n->nparams + nseg > *maxp)
      *maxp = 1 + n->nin + n->nparams + nseg;
    progress_report(prog, "generating kernels", ++k_done, nk, "layers");
  }
  return true;
}

/* What the three forward functions share while they are emitted. */
typedef struct {
  BeCtx *c;
  Graph *g;
  const BeChoice *choice;
  Status *st;
  LLVMTypeRef pf_ty; /* cnnrt_launch */
  LLVMValueRef pf;
  LLVMValueRef *fns; /* kernel by node id */
  int *layer_of;     /* layer number by node id */
  int maxp;          /* most entries of one launch's ptrs, nb and stride included */
  Tail tail;
} Fwd;

/* A function of the module: void name(ptr, ptr, ptr, arg3, ptr), hidden,
   the builder in its entry block. */
static LLVMValueRef begin_fn(BeCtx *c, const char *name, LLVMTypeRef arg3) {
  LLVMTypeRef args[5] = {c->t_ptr, c->t_ptr, c->t_ptr, arg3, c->t_ptr};
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->t_void, args, 5, 0));
  LLVMSetVisibility(fn, LLVMHiddenVisibility);
  be_func_attrs(c, fn);
  be_func_begin(c, fn);
  return fn;
}

/* The host inputs' pointers, loaded from the array `inputs` (xcalloc'd). */
static LLVMValueRef *load_inputs(BeCtx *c, const Graph *g, LLVMValueRef inputs) {
  LLVMValueRef *in_ptrs = xcalloc((size_t)(g->ninputs ? g->ninputs : 1), sizeof *in_ptrs);
  for (int i = 0; i < g->ninputs; i++) {
    LLVMValueRef idx = be_i64(c, i);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->t_ptr, inputs, &idx, 1, "");
    in_ptrs[i] = LLVMBuildLoad2(c->b, c->t_ptr, p, "input");
  }
  return in_ptrs;
}

/* One launch per kernel node of [from, to), tensors at a; a batched
   kernel gets nb and stride (i64 values) after its pointers. */
static bool emit_launches(Fwd *f, LLVMValueRef ctx, LLVMValueRef weights, LLVMValueRef ptrs,
                          int from, int to, const Addr *a, LLVMValueRef nb, LLVMValueRef stride) {
  BeCtx *c = f->c;
  for (int i = from; i < to; i++) {
    Node *n = GRAPH_NODE(f->g, i);
    const BeChoice *ch = &f->choice[n->id];
    if (!ch->impl)
      continue;
    if (!store_kernel_ptrs(c, f->g, n, ptrs, weights, a, f->st))
      return false;
    if (be_kernel_batched(ch->impl)) {
      int nseg = 0;
      free(ir_split_slices(f->g, n, &nseg));
      LLVMValueRef x[2] = {nb, stride};
      for (int k = 0; k < 2; k++) {
        LLVMValueRef idx = be_i64(c, 1 + n->nin + n->nparams + nseg + k);
        LLVMBuildStore(c->b, LLVMBuildIntToPtr(c->b, x[k], c->t_ptr, ""),
                       LLVMBuildInBoundsGEP2(c->b, c->t_ptr, ptrs, &idx, 1, ""));
      }
    }
    LLVMValueRef args[5] = {ctx, f->fns[n->id], ptrs, be_i64(c, ch->work),
                            be_i32(c, f->layer_of[n->id])};
    LLVMBuildCall2(c->b, f->pf_ty, f->pf, args, 5, "");
  }
  return true;
}

static LLVMValueRef ptrs_array(Fwd *f) {
  return LLVMBuildAlloca(f->c->b, LLVMArrayType2(f->c->t_ptr, (uint64_t)f->maxp), "ptrs");
}

/* cnnrt_forward(ctx, weights, arena, inputs, outputs): one sample, every
   node, then the outputs copied out. */
static bool emit_forward_one(Fwd *f) {
  BeCtx *c = f->c;
  LLVMValueRef fw = begin_fn(c, "cnnrt_forward", c->t_ptr);
  LLVMValueRef ptrs = ptrs_array(f);
  LLVMValueRef *in_ptrs = load_inputs(c, f->g, LLVMGetParam(fw, 3));
  Addr a = {LLVMGetParam(fw, 2), in_ptrs, NULL};
  bool ok = emit_launches(f, LLVMGetParam(fw, 0), LLVMGetParam(fw, 1), ptrs, 0, f->g->nodes.len, &a,
                          be_i64(c, 1), be_i64(c, 0));
  for (int i = 0; i < f->g->noutputs && ok; i++) {
    const Node *n = f->g->outputs[i].node;
    LLVMValueRef src = tensor_addr(c, f->g, n, &a, f->st);
    if (!src) {
      ok = false;
      break;
    }
    LLVMValueRef idx = be_i64(c, i);
    LLVMValueRef dst = LLVMBuildLoad2(
        c->b, c->t_ptr, LLVMBuildInBoundsGEP2(c->b, c->t_ptr, LLVMGetParam(fw, 4), &idx, 1, ""),
        "out");
    LLVMBuildMemCpy(c->b, dst, 4, src, 4, be_i64(c, shape_numel(&n->shape) * 4));
  }
  LLVMBuildRetVoid(c->b);
  free(in_ptrs);
  return ok;
}

/* cnnrt_forward_head(ctx, weights, arena, inputs, slot): the nodes before
   the tail, then the tail's ranges copied from the arena into the slot. */
static bool emit_forward_head(Fwd *f) {
  BeCtx *c = f->c;
  LLVMValueRef fn = begin_fn(c, "cnnrt_forward_head", c->t_ptr);
  bool ok = true;
  if (f->tail.start >= 0) {
    LLVMValueRef ptrs = ptrs_array(f);
    LLVMValueRef *in_ptrs = load_inputs(c, f->g, LLVMGetParam(fn, 3));
    Addr a = {LLVMGetParam(fn, 2), in_ptrs, NULL};
    ok = emit_launches(f, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), ptrs, 0, f->tail.start, &a,
                       be_i64(c, 1), be_i64(c, 0));
    for (int i = 0; i < f->tail.nr && ok; i++) {
      const TailRange *r = &f->tail.r[i];
      LLVMValueRef from = be_i64(c, r->off), to = be_i64(c, r->to);
      LLVMValueRef src = r->space ? in_ptrs[r->space - 1] : a.base;
      LLVMBuildMemCpy(c->b, LLVMBuildInBoundsGEP2(c->b, c->t_i8, LLVMGetParam(fn, 4), &to, 1, ""),
                      4, LLVMBuildInBoundsGEP2(c->b, c->t_i8, src, &from, 1, ""), 4,
                      be_i64(c, r->bytes));
    }
    free(in_ptrs);
  }
  LLVMBuildRetVoid(c->b);
  return ok;
}

/* cnnrt_forward_tail(ctx, weights, tail, nb, outputs): the tail for the
   nb slots from `tail` on, then sample b's outputs to outputs[i] + b. */
static bool emit_forward_tail(Fwd *f) {
  BeCtx *c = f->c;
  LLVMValueRef fn = begin_fn(c, "cnnrt_forward_tail", c->t_i64);
  const Tail *t = &f->tail;
  bool ok = true;
  if (t->start >= 0) {
    LLVMValueRef ctx = LLVMGetParam(fn, 0), weights = LLVMGetParam(fn, 1);
    LLVMValueRef tail = LLVMGetParam(fn, 2), nb = LLVMGetParam(fn, 3);
    LLVMValueRef ptrs = ptrs_array(f);
    for (int i = t->start; i < f->g->nodes.len && ok; i++) {
      const BeChoice *ch = &f->choice[GRAPH_NODE(f->g, i)->id];
      if (!ch->impl)
        continue;
      if (be_kernel_batched(ch->impl)) {
        Addr a = {tail, NULL, t};
        ok = emit_launches(f, ctx, weights, ptrs, i, i + 1, &a, nb, be_i64(c, t->slot / 4));
        continue;
      }
      BeLoop bl;
      be_for(c, &bl, be_i64(c, 0), nb, "sample");
      LLVMValueRef off = be_mulk(c, bl.iv, t->slot);
      Addr a = {LLVMBuildInBoundsGEP2(c->b, c->t_i8, tail, &off, 1, ""), NULL, t};
      ok = emit_launches(f, ctx, weights, ptrs, i, i + 1, &a, be_i64(c, 1), be_i64(c, 0));
      be_for_end(c, &bl);
    }
    for (int i = 0; i < f->g->noutputs && ok; i++) {
      const Node *n = f->g->outputs[i].node;
      int64_t bytes = shape_numel(&n->shape) * 4;
      LLVMValueRef idx = be_i64(c, i);
      LLVMValueRef dst = LLVMBuildLoad2(
          c->b, c->t_ptr, LLVMBuildInBoundsGEP2(c->b, c->t_ptr, LLVMGetParam(fn, 4), &idx, 1, ""),
          "out");
      BeLoop bl;
      be_for(c, &bl, be_i64(c, 0), nb, "sample");
      LLVMValueRef off = be_mulk(c, bl.iv, t->slot), doff = be_mulk(c, bl.iv, bytes);
      Addr a = {LLVMBuildInBoundsGEP2(c->b, c->t_i8, tail, &off, 1, ""), NULL, t};
      LLVMValueRef src = tensor_addr(c, f->g, n, &a, f->st);
      ok = src != NULL;
      if (ok)
        LLVMBuildMemCpy(c->b, LLVMBuildInBoundsGEP2(c->b, c->t_i8, dst, &doff, 1, ""), 4, src, 4,
                        be_i64(c, bytes));
      be_for_end(c, &bl);
    }
  }
  LLVMBuildRetVoid(c->b);
  hidden_const(c, "cnnrt_tail_tile", be_i32(c, t->start >= 0 ? BE_TAIL_TILE : 0));
  hidden_const(c, "cnnrt_tail_slot_bytes", be_i64(c, t->start >= 0 ? t->slot : 0));
  return ok;
}

/* The profiler's tables: one entry per kernel launch of cnnrt_forward, in
   node order (the head and tail use the same numbers). */
static void emit_layer_tables(Fwd *f) {
  BeCtx *c = f->c;
  Graph *g = f->g;
  int n_nodes = g->nodes.len, nlayers = 0;
  LLVMValueRef *lnames = xcalloc((size_t)(n_nodes ? n_nodes : 1), sizeof *lnames);
  LLVMValueRef *lflops = xcalloc((size_t)(n_nodes ? n_nodes : 1), sizeof *lflops);
  LLVMValueRef *lbytes = xcalloc((size_t)(n_nodes ? n_nodes : 1), sizeof *lbytes);
  for (int i = 0; i < n_nodes; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (!f->choice[n->id].impl)
      continue;
    lnames[nlayers] = layer_name(c, n, f->choice[n->id].impl, nlayers);
    lflops[nlayers] = be_i64(c, 2 * (int64_t)ir_node_macs(n));
    lbytes[nlayers] = be_i64(c, layer_bytes(n));
    f->layer_of[n->id] = nlayers++;
  }
  hidden_const(c, "cnnrt_num_layers", be_i32(c, nlayers));
  LLVMValueRef ln = LLVMConstArray2(c->t_ptr, lnames, (uint64_t)nlayers);
  hidden_const(c, "cnnrt_layer_names", ln);
  hidden_const(c, "cnnrt_layer_flops", LLVMConstArray2(c->t_i64, lflops, (uint64_t)nlayers));
  hidden_const(c, "cnnrt_layer_bytes", LLVMConstArray2(c->t_i64, lbytes, (uint64_t)nlayers));
  free(lnames);
  free(lflops);
  free(lbytes);
}

static bool emit_forward(BeCtx *c, Graph *g, const BeChoice *choice, Status *st,
                         const ProgressHook *prog) {
  Fwd f = {.c = c, .g = g, .choice = choice, .st = st};
  LLVMTypeRef pf_args[5] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_i32};
  f.pf_ty = LLVMFunctionType(c->t_void, pf_args, 5, 0);
  f.pf = LLVMAddFunction(c->mod, "cnnrt_launch", f.pf_ty);
  LLVMSetVisibility(f.pf, LLVMHiddenVisibility);
  be_add_enum_attr(c, f.pf, LLVMAttributeFunctionIndex, "nounwind");
  f.fns = xcalloc((size_t)g->next_id + 1, sizeof *f.fns);
  f.layer_of = xcalloc((size_t)g->next_id + 1, sizeof *f.layer_of);
  bool ok =
      emit_kernels(c, g, choice, f.fns, &f.maxp, st, prog) && find_tail(g, choice, &f.tail, st);
  f.maxp += 2; /* nb and stride of a batched kernel */
  if (ok) {
    emit_layer_tables(&f);
    ok = emit_forward_one(&f) && emit_forward_head(&f) && emit_forward_tail(&f);
  }
  free(f.tail.r);
  free(f.layer_of);
  free(f.fns);
  return ok;
}

/* ------------------------------------------------------------------- files */

/* A fresh temporary name beside `final` (same directory, so rename is
   atomic); the file is created empty. */
static char *temp_beside(const char *final, Status *st) {
  char *t = xasprintf("%s.tmpXXXXXX", final);
  int fd = mkstemp(t);
  if (fd < 0) {
    fail(st, 1, "cannot create a file beside '%s': %s", final, strerror(errno));
    free(t);
    return NULL;
  }
  /* mkstemp makes the file 0600; give it the mode a plain fopen would. */
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  close(fd);
  return t;
}

static bool output_dir_ok(const char *output, Status *st) {
  char *copy = strdup(output);
  const char *dir = dirname(copy);
  struct stat sb;
  bool ok = true;
  if (stat(dir, &sb) != 0) {
    fail(st, 1, "cannot write '%s': directory '%s' does not exist", output, dir);
    ok = false;
  } else if (!S_ISDIR(sb.st_mode)) {
    fail(st, 1, "cannot write '%s': '%s' is not a directory", output, dir);
    ok = false;
  } else if (access(dir, W_OK) != 0) {
    fail(st, 1, "cannot write '%s': directory '%s' is not writable", output, dir);
    ok = false;
  }
  free(copy);
  return ok;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* LLVM's default handler exits the process on an error diagnostic (e.g. a
   bad inline-asm .incbin); record the first one instead and fail cleanly,
   removing temporary files. */
typedef struct {
  char msg[1024];
} LlvmDiag;

static void llvm_diag_handler(LLVMDiagnosticInfoRef di, void *arg) {
  LlvmDiag *ld = arg;
  if (LLVMGetDiagInfoSeverity(di) != LLVMDSError || ld->msg[0])
    return;
  char *text = LLVMGetDiagInfoDescription(di);
  snprintf(ld->msg, sizeof ld->msg, "%s", text ? text : "LLVM error");
  LLVMDisposeMessage(text);
}

/* ------------------------------------------------------------ entry point */

/* Everything one compilation makes, so that each step is a function and a
   failure anywhere can undo what was made. */
typedef struct {
  Graph *g;
  const BackendOptions *o;
  Status st;
  double t0, t_ir, t_opt;
  /* step 2 */
  LLVMTargetMachineRef tm;
  char *cpu, *features;
  BeConfig cf;
  /* step 3 */
  BeChoice *choice; /* by node id */
  /* step 4 */
  BlobLayout blob;
  char build_id[CNNRT_BUILD_ID_LEN + 1];
  char *workdir, *blob_path, *obj_path;
  char *weights_final, *weights_tmp, *incbin_abs;
  const char *incbin;  /* the blob file the module's .incbin names */
  bool embed;          /* weights inside the .so */
  bool blob_published; /* weights_final exists, made by this run */
  /* step 5 */
  BeCtx c;
  LlvmDiag llvm_diag;
  bool have_module;
  /* step 8 */
  char *out_tmp;
} Compile;

static uint64_t blob_file_bytes(const Compile *cp) {
  return sizeof(CnnrtBlobHeader) + (uint64_t)cp->blob.data_bytes;
}

/* 1. Can this run succeed at all? Every tensor resolves to storage. */
static bool preflight(Compile *cp) {
  const BackendOptions *o = cp->o;
  Graph *g = cp->g;
  if (!o || !o->output) {
    fail(&cp->st, 2, "backend_compile: no output file");
    return false;
  }
  if (!output_dir_ok(o->output, &cp->st))
    return false;
  if (o->emit == EMIT_SO && (!o->runtime_lib || access(o->runtime_lib, R_OK) != 0)) {
    fail(&cp->st, 1, "runtime library '%s' not found (is cnncc installed correctly?)",
         o->runtime_lib ? o->runtime_lib : "(none)");
    return false;
  }
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    Loc l;
    if (!n->dead && !n->split && !resolve(g, n, &l, &cp->st))
      return false;
  }
  for (int i = 0; i < g->noutputs; i++)
    if (!g->outputs[i].node || g->outputs[i].node->dead) {
      fail(&cp->st, 2, "graph output %d is missing", i);
      return false;
    }
  return true;
}

/* 2. The target machine, and what the kernel plans need to know of it. */
static bool setup_target(Compile *cp) {
  char err[2048];
  cp->tm = be_target_machine(cp->o, &cp->cf.target, err, sizeof err);
  cp->cpu = (char *)cp->cf.target.cpu;
  cp->features = (char *)cp->cf.target.features;
  if (!cp->tm) {
    fail(&cp->st, 1, "%s", err);
    return false;
  }
  cp->cf.precision = cp->o->precision;
  cp->cf.tune = &cp->o->tune;
  if (cp->o->precision == PRECISION_INT8 &&
      (cp->cf.target.arch != BE_X86_64 || cp->cf.target.lanes < 8)) {
    fail(&cp->st, 1,
         "--precision=int8 needs x86-64 with AVX2 (vpmaddwd) or AVX512-VNNI (vpdpbusd), which "
         "the target (cpu '%s'%s%s) lacks",
         cp->cpu ? cp->cpu : "?", cp->features && *cp->features ? ", features " : "",
         cp->features && *cp->features ? cp->features : "");
    return false;
  }
  return true;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* For --stats: how many nodes each kernel of the table runs, as
   "conv2d/direct16 3, relu/nchw16c 2" (op/kernel, sorted). */
static void stat_kernels(Graph *g, const BeChoice *choice) {
  const char **keys = xcalloc((size_t)g->nodes.len + 1, sizeof *keys);
  int n = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *x = GRAPH_NODE(g, i);
    if (choice[x->id].impl)
      keys[n++] = arena_printf(g->arena, "%s/%s", ir_ops[x->op].name, choice[x->id].impl->name);
  }
  qsort(keys, (size_t)n, sizeof *keys, cmp_str);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  for (int i = 0; i < n;) {
    int j = i;
    while (j < n && !strcmp(keys[j], keys[i]))
      j++;
    fprintf(f, "%s%s %d", i ? ", " : "", keys[i], j - i);
    i = j;
  }
  fclose(f);
  if (n)
    ir_stat(g, "backend", "kernels: %s", buf);
  free(buf);
  free(keys);
}

/* 3. One kernel decision per node. */
static bool choose_kernels(Compile *cp) {
  char err[512];
  cp->choice = xcalloc((size_t)cp->g->next_id + 1, sizeof *cp->choice);
  if (!be_choose_kernels(&cp->cf, cp->g, cp->choice, err, sizeof err)) {
    fail(&cp->st, 2, "%s", err);
    return false;
  }
  stat_kernels(cp->g, cp->choice);
  return true;
}

static bool write_blob_to(Compile *cp, const char *path) {
  char err[1024];
  if (be_blob_write(&cp->cf, &cp->blob, path, cp->build_id, cp->o->progress, err, sizeof err))
    return true;
  fail(&cp->st, 1, "%s (the %lld bytes of weights of '%s')", err, (long long)blob_file_bytes(cp),
       cp->o->output);
  return false;
}

/* 4. The weights: laid out, then written where the output needs them. The
   work directory holds the embedded blob and the object file. */
static bool place_weights(Compile *cp) {
  const BackendOptions *o = cp->o;
  char err[512];
  if (!be_blob_layout(&cp->cf, cp->g, cp->choice, &cp->blob, err, sizeof err)) {
    fail(&cp->st, 2, "%s", err);
    return false;
  }
  be_build_id(&cp->cf, cp->g, cp->build_id);

  cp->workdir = xasprintf("%s/cnncc.XXXXXX", o->tmpdir && *o->tmpdir ? o->tmpdir : "/tmp");
  if (!mkdtemp(cp->workdir)) {
    free(cp->workdir);
    cp->workdir = xstrdup("/tmp/cnncc.XXXXXX");
    if (!mkdtemp(cp->workdir)) {
      fail(&cp->st, 1, "cannot create a temporary directory: %s", strerror(errno));
      free(cp->workdir);
      cp->workdir = NULL;
      return false;
    }
  }
  cp->blob_path = xasprintf("%s/weights.bin", cp->workdir);
  cp->obj_path = xasprintf("%s/net.o", cp->workdir);

  /* Embedded from the work dir; beside the output for external weights;
     and also beside the output for .ll/.s, which name it by absolute path
     in their .incbin so they can still be assembled. */
  cp->embed = !o->external_weights;
  if (o->external_weights)
    cp->weights_final = xasprintf("%s.weights", o->output);
  else if (o->emit == EMIT_LLVM || o->emit == EMIT_ASM)
    cp->weights_final = xasprintf("%s.blob", o->output);
  if (!cp->weights_final) {
    cp->incbin = cp->blob_path;
    return write_blob_to(cp, cp->blob_path);
  }
  cp->weights_tmp = temp_beside(cp->weights_final, &cp->st);
  if (!cp->weights_tmp || !write_blob_to(cp, cp->weights_tmp))
    return false;
  if (!cp->embed)
    return true; /* published with the output */
  char *copy = xstrdup(cp->weights_final), *copy2 = xstrdup(cp->weights_final);
  char *dir = realpath(dirname(copy), NULL);
  cp->incbin_abs = xasprintf("%s/%s", dir ? dir : ".", basename(copy2));
  free(dir);
  free(copy);
  free(copy2);
  cp->incbin = cp->incbin_abs;
  /* Publish the blob now: the .ll/.s name its final path (it is removed
     again on failure). */
  if (rename(cp->weights_tmp, cp->weights_final) != 0) {
    fail(&cp->st, 1, "cannot write '%s': %s", cp->weights_final, strerror(errno));
    return false;
  }
  free(cp->weights_tmp);
  cp->weights_tmp = NULL;
  cp->blob_published = true;
  return true;
}

/* 5. The LLVM context and module, with the target's triple and layout. */
static void setup_module(Compile *cp) {
  BeCtx *c = &cp->c;
  c->ctx = LLVMContextCreate();
  LLVMContextSetDiagnosticHandler(c->ctx, llvm_diag_handler, &cp->llvm_diag);
  c->mod = LLVMModuleCreateWithNameInContext(cp->g->name ? cp->g->name : "net", c->ctx);
  c->b = LLVMCreateBuilderInContext(c->ctx);
  c->t_void = LLVMVoidTypeInContext(c->ctx);
  c->t_i1 = LLVMInt1TypeInContext(c->ctx);
  c->t_i8 = LLVMInt8TypeInContext(c->ctx);
  c->t_i32 = LLVMInt32TypeInContext(c->ctx);
  c->t_i64 = LLVMInt64TypeInContext(c->ctx);
  c->t_f32 = LLVMFloatTypeInContext(c->ctx);
  c->t_ptr = LLVMPointerTypeInContext(c->ctx, 0);
  LLVMTypeRef kargs[3] = {c->t_ptr, c->t_i64, c->t_i64};
  c->t_kernel = LLVMFunctionType(c->t_void, kargs, 3, 0);
  c->t_v16 = LLVMVectorType(c->t_f32, 16);
  c->cfg = &cp->cf;
  char *triple = LLVMGetTargetMachineTriple(cp->tm);
  LLVMSetTarget(c->mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(cp->tm);
  LLVMSetModuleDataLayout(c->mod, td);
  LLVMDisposeTargetData(td);
  cp->have_module = true;
}

/* 6. Kernels, the forward function, the info globals, the blob symbol;
   then the module must verify. */
static bool emit_module(Compile *cp) {
  BeCtx *c = &cp->c;
  const BackendOptions *o = cp->o;
  bool ok = emit_forward(c, cp->g, cp->choice, &cp->st, o->progress);
  cp->t_ir = now_ms();
  if (!ok)
    return false;
  emit_info(c, cp->g, o, cp->blob.data_bytes, cp->embed ? blob_file_bytes(cp) : 0, cp->build_id);
  if (!(cp->embed && o->emit == EMIT_ASM))
    emit_blob_symbol(c, cp->embed ? cp->incbin : NULL, blob_file_bytes(cp));
  char *msg = NULL;
  if (LLVMVerifyModule(c->mod, LLVMReturnStatusAction, &msg)) {
    fail(&cp->st, 2, "generated LLVM module does not verify: %s", msg ? msg : "");
    ok = false;
  }
  LLVMDisposeMessage(msg);
  return ok;
}

/* 7. LLVM's optimization pipeline (a busy step: LLVM reports no progress). */
static bool optimize(Compile *cp) {
  const BackendOptions *o = cp->o;
  if (o->progress) {
    int nfn = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(cp->c.mod); fn; fn = LLVMGetNextFunction(fn))
      nfn += !LLVMIsDeclaration(fn);
    char what[96];
    snprintf(what, sizeof what, "optimizing with LLVM (-O%d, %d functions)", o->opt_level, nfn);
    progress_report(o->progress, what, 0, -1, NULL);
  }
  char err[2048];
  bool ok = be_optimize(cp->c.mod, cp->tm, o->opt_level, err, sizeof err);
  if (!ok)
    fail(&cp->st, 2, "%s", err);
  cp->t_opt = now_ms();
  return ok;
}

/* 8. The requested output, into a temporary beside the final name. */
static bool write_output(Compile *cp) {
  const BackendOptions *o = cp->o;
  LLVMModuleRef mod = cp->c.mod;
  char err[2048];
  progress_report(o->progress, o->emit == EMIT_LLVM ? "writing LLVM IR" : "generating machine code",
                  0, -1, NULL);
  if (o->emit == EMIT_SO) {
    if (!be_emit_file(mod, cp->tm, cp->obj_path, false, err, sizeof err)) {
      fail(&cp->st, 2, "%s", err);
      return false;
    }
  }
  cp->out_tmp = temp_beside(o->output, &cp->st);
  if (!cp->out_tmp)
    return false;
  switch (o->emit) {
  case EMIT_LLVM: {
    char *msg = NULL;
    bool ok = !LLVMPrintModuleToFile(mod, cp->out_tmp, &msg);
    if (!ok)
      fail(&cp->st, 1, "cannot write '%s': %s", o->output, msg ? msg : "");
    LLVMDisposeMessage(msg);
    return ok;
  }
  case EMIT_ASM:
  case EMIT_OBJ:
    if (!be_emit_file(mod, cp->tm, cp->out_tmp, o->emit == EMIT_ASM, err, sizeof err)) {
      fail(&cp->st, 2, "%s", err);
      return false;
    }
    if (o->emit == EMIT_ASM && cp->embed &&
        !append_blob_asm(cp->out_tmp, cp->incbin, blob_file_bytes(cp))) {
      fail(&cp->st, 1, "cannot write '%s': %s", o->output, strerror(errno));
      return false;
    }
    return true;
  case EMIT_SO:
    progress_report(o->progress, "linking", 0, -1, NULL);
    if (!be_link_shared(o, cp->obj_path, cp->out_tmp, err, sizeof err)) {
      fail(&cp->st, 1, "linking '%s' failed:\n%s", o->output, err);
      return false;
    }
    return true;
  }
  return false;
}

/* 9. Publish: the weights first (a .so without its blob is useless), then
   the output; undo the weights if the second rename fails. */
static void publish(Compile *cp) {
  const BackendOptions *o = cp->o;
  if (cp->weights_tmp) {
    if (rename(cp->weights_tmp, cp->weights_final) != 0) {
      fail(&cp->st, 1, "cannot write '%s': %s", cp->weights_final, strerror(errno));
      return;
    }
    free(cp->weights_tmp);
    cp->weights_tmp = NULL;
  }
  if (file_publish(cp->out_tmp, o->output) != 0) {
    fail(&cp->st, 1, "cannot write '%s': %s", o->output, strerror(errno));
    if (cp->weights_final)
      unlink(cp->weights_final);
  }
}

/* Removes the files of this run that must not outlive it: the work
   directory, a weights temporary and, after a failure, whatever it
   created beside the output. */
static void remove_files(Compile *cp, bool failed) {
  if (failed && cp->out_tmp)
    unlink(cp->out_tmp);
  if (failed && cp->blob_published)
    unlink(cp->weights_final);
  if (cp->weights_tmp)
    unlink(cp->weights_tmp);
  if (cp->workdir) {
    unlink(cp->blob_path);
    unlink(cp->obj_path);
    rmdir(cp->workdir);
  }
}

/* Frees everything; on failure removes every file this run made. */
static void finish(Compile *cp) {
  bool failed = cp->st.rc != 0;
  if (cp->have_module) {
    be_kernel_cache_free(&cp->c);
    LLVMDisposeBuilder(cp->c.b);
    LLVMDisposeModule(cp->c.mod);
    LLVMContextDispose(cp->c.ctx);
  }
  if (cp->tm)
    LLVMDisposeTargetMachine(cp->tm);
  remove_files(cp, failed);
  free(cp->out_tmp);
  free(cp->weights_tmp);
  free(cp->weights_final);
  free(cp->incbin_abs);
  free(cp->blob_path);
  free(cp->obj_path);
  free(cp->workdir);
  free(cp->cpu);
  free(cp->features);
  free(cp->choice);
  be_blob_free(&cp->blob);
}

/* ---------------------------------------------------------- exits midway

   A compile can end without returning: out of memory (support/check.c's
   x-allocators exit 1), a failed CHECK (exit 2), or LLVM, which has its
   own fatal errors (an output stream that fails, exit 1 by default) and
   aborts when it runs out of memory. None of these may leave a partial
   file: the compile in progress is the backend's one piece of global
   state, so that an exit handler can remove its files, and LLVM's two
   error hooks are pointed at cnncc's messages and exit codes. */
static Compile *in_progress;

static void remove_files_at_exit(void) {
  if (in_progress)
    remove_files(in_progress, true);
}

/* report_fatal_error: a failed write of the object file (a full disk, a
   file size limit) is the user's environment, exit 1; anything else is
   an internal error. */
static void llvm_fatal_error(const char *reason) {
  bool io =
      strstr(reason, "IO failure") || strstr(reason, "No space") || strstr(reason, "too large");
  if (io && in_progress && in_progress->o && in_progress->o->output)
    fprintf(stderr, "cnncc: error: cannot write '%s' (LLVM: %s)\n", in_progress->o->output, reason);
  else
    fprintf(stderr, "cnncc: error: %sLLVM: %s\n", io ? "" : "internal error: ", reason);
  exit(io ? 1 : 2);
}

/* LLVM's C API has no hook for running out of memory (LLVM aborts, exit
   134): the C++ function that installs one is reached by its mangled
   name, llvm::install_bad_alloc_error_handler(void (*)(void *, const
   char *, bool), void *), and llvm::install_out_of_memory_new_handler()
   routes LLVM's failed operator new there too. The handler must not
   return; it leaves as an allocation failure of cnncc's own does. */
extern void be_llvm_install_bad_alloc_handler(void (*)(void *, const char *, bool), void *) __asm__(
    "_ZN4llvm31install_bad_alloc_error_handlerEPFvPvPKcbES0_");
extern void
be_llvm_install_oom_new_handler(void) __asm__("_ZN4llvm33install_out_of_memory_new_handlerEv");

static void llvm_bad_alloc(void *data, const char *reason, bool gen_crash_diag) {
  (void)data;
  (void)gen_crash_diag;
  static const char msg[] = "cnncc: error: out of memory (in LLVM)\n";
  if (write(2, msg, sizeof msg - 1) < 0) {
    /* nothing more to do */
  }
  (void)reason;
  remove_files_at_exit();
  _exit(1);
}

static void install_exit_handlers(void) {
  static bool done;
  if (done)
    return;
  done = true;
  atexit(remove_files_at_exit);
  LLVMInstallFatalErrorHandler(llvm_fatal_error);
  be_llvm_install_bad_alloc_handler(llvm_bad_alloc, NULL);
  be_llvm_install_oom_new_handler();
}

int backend_compile(Graph *g, const BackendOptions *o, Diag *d) {
  install_exit_handlers();
  Compile cp = {.g = g, .o = o, .st = {d, 0}, .t0 = now_ms()};
  in_progress = &cp;
  bool ok = preflight(&cp) && setup_target(&cp) && choose_kernels(&cp) && place_weights(&cp);
  if (ok) {
    setup_module(&cp);
    ok = emit_module(&cp) && optimize(&cp) && write_output(&cp);
    if (ok && cp.llvm_diag.msg[0] && strstr(cp.llvm_diag.msg, "incbin")) {
      /* the blob is there: LLVM could not read it, short of memory */
      fail(&cp.st, 1,
           "LLVM could not read the %lld bytes of weights to embed in '%s' (out of memory?); "
           "--external-weights keeps them out of the .so",
           (long long)blob_file_bytes(&cp), o->output);
      ok = false;
    } else if (ok && cp.llvm_diag.msg[0]) {
      fail(&cp.st, 2, "LLVM: %s", cp.llvm_diag.msg);
      ok = false;
    }
    if (o->verbose)
      fprintf(stderr,
              "cnncc: backend: %d kernels (%d shared), %lld weight bytes; ir %.0f ms, "
              "opt %.0f ms, emit+link %.0f ms\n",
              cp.c.nkernels, cp.c.nshared, (long long)cp.blob.data_bytes, cp.t_ir - cp.t0,
              cp.t_opt - cp.t_ir, now_ms() - cp.t_opt);
  }
  if (!ok && cp.st.rc == 0)
    cp.st.rc = 2;
  if (cp.st.rc == 0)
    publish(&cp);
  finish(&cp);
  in_progress = NULL;
  if (o && o->verbose && cp.st.rc == 0)
    fprintf(stderr, "cnncc: backend: wrote %s in %.0f ms\n", o->output, now_ms() - cp.t0);
  return cp.st.rc;
}
