/*
 * codegen.c: backend_compile, the driver of the backend.
 *
 * For one planned graph it builds one LLVM module:
 *   - the weight blob: every parameter a live node uses, in g->params order,
 *     64-byte aligned after a CnnrtBlobHeader; Param.blob_offset is set to
 *     its byte offset in the data. The blob is a file: embedded through
 *     module-level `.incbin` into .rodata as the hidden symbol cnnrt_blob,
 *     or written beside the output as OUTPUT.weights (external weights;
 *     cnnrt_blob_size is then 0);
 *   - one kernel per node (kernels.c), shared between identical nodes;
 *   - cnnrt_forward(ctx, weights, arena, inputs, outputs): per node, in
 *     g->nodes order, a stack array of the node's pointers (output, inputs,
 *     parameters) and a call cnnrt_parallel_for(ctx, kernel, ptrs, work);
 *     then the graph outputs are copied out. Tensor addresses come from
 *     Node.mem: MEM_INPUT -> inputs[index], MEM_ARENA -> arena + offset,
 *     MEM_ALIAS -> the aliased tensor's address + offset;
 *   - the constant globals the runtime reads: cnnrt_info (laid out as
 *     cnn_info), cnnrt_blob_size, cnnrt_build_id.
 * Then target.c optimizes and emits it, and for a shared object links it
 * with the runtime. Each step is reported to BackendOptions.progress
 * (support/progress.h) as it goes: the bytes of the blob written, the layers
 * whose kernel exists, and LLVM's steps as busy (LLVM reports no progress).
 *
 * The build id hashes what makes a blob fit a .so: the IR text, each packed
 * parameter's name, shape and offset, and the cnncc version, but not the
 * weight values, so a blob of retrained weights for the same spec loads.
 *
 * Files are produced atomically: everything is written into a private
 * temporary directory or to temporaries beside the output, and renamed into
 * place only when all steps have succeeded.
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

/* ---------------------------------------------------------------- build id */

typedef struct {
  uint64_t a, b;
} Hash128;

static void hash_bytes(Hash128 *h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h->a = (h->a ^ s[i]) * 0x100000001b3ull;
    h->b = (h->b ^ (unsigned char)(s[i] + 0x9d)) * 0x100000001b3ull;
  }
}

static void hash_str(Hash128 *h, const char *s) { hash_bytes(h, s, strlen(s) + 1); }

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

/* ----------------------------------------------------------------- the blob */

static bool is_kernel_node(const Node *n) {
  return !n->dead && !n->elided && !(ir_ops[n->op].flags & (OPF_VIEW | OPF_SOURCE));
}

static int cmp_slice_begin(const void *a, const void *b) {
  const Node *x = *(Node *const *)a, *y = *(Node *const *)b;
  return x->attr.slice_begin < y->attr.slice_begin ? -1 : x->attr.slice_begin > y->attr.slice_begin;
}

Node **be_split_slices(const Graph *g, const Node *n, int *count) {
  *count = 0;
  if (!n->split)
    return NULL;
  Node **v = NULL;
  int cap = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *s = GRAPH_NODE(g, i);
    if (s->dead || s->op != OP_SLICE || s->in[0] != n)
      continue;
    if (*count == cap) {
      cap = cap ? 2 * cap : 8;
      v = realloc(v, sizeof *v * (size_t)cap);
    }
    v[(*count)++] = s;
  }
  if (*count)
    qsort(v, (size_t)*count, sizeof *v, cmp_slice_begin);
  return v;
}

/* Floats of p in the blob: its own, or more when a Winograd conv stores
   it transformed (winograd.c). */
static int64_t blob_numel(Graph *g, const Param *p) {
  for (int j = 0; j < g->nodes.len; j++) {
    int64_t k = be_winograd_numel(GRAPH_NODE(g, j), p);
    if (k)
      return k;
  }
  return param_numel(p);
}

/* Assigns blob offsets to every parameter a live node uses; returns the
   data size in bytes, or -1. */
static int64_t layout_blob(Graph *g, Status *st) {
  for (int i = 0; i < g->params.len; i++)
    GRAPH_PARAM(g, i)->blob_offset = -1;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (!is_kernel_node(n))
      continue;
    for (int k = 0; k < n->nparams; k++)
      if (n->params[k])
        n->params[k]->blob_offset = -2; /* used, not placed yet */
  }
  int64_t off = 0;
  bool ok = true;
#define PLACE(p)                                                                                   \
  do {                                                                                             \
    if ((p)->blob_offset == -2) {                                                                  \
      if (!(p)->data) {                                                                            \
        fail(st, 2, "parameter '%s' has no data (weights not bound)", (p)->name);                  \
        ok = false;                                                                                \
      }                                                                                            \
      (p)->blob_offset = off;                                                                      \
      off += (blob_numel(g, p) * 4 + 63) & ~(int64_t)63;                                           \
    }                                                                                              \
  } while (0)
  for (int i = 0; i < g->params.len; i++)
    PLACE(GRAPH_PARAM(g, i));
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (is_kernel_node(n))
      for (int k = 0; k < n->nparams; k++)
        if (n->params[k])
          PLACE(n->params[k]);
  }
#undef PLACE
  return ok ? off : -1;
}

/* fwrite in pieces of at most 8 MB, reporting "packing weights": pos of
   total blob bytes were written before this buffer. */
static bool write_reporting(FILE *f, const void *buf, size_t n, int64_t pos, int64_t total,
                            const ProgressHook *prog) {
  const char *s = buf;
  for (size_t k = 0; k < n;) {
    size_t m = n - k < ((size_t)8 << 20) ? n - k : (size_t)8 << 20;
    if (fwrite(s + k, 1, m, f) != m)
      return false;
    k += m;
    progress_report(prog, "packing weights", (double)(pos + (int64_t)k), (double)total, "B");
  }
  return true;
}

/* Writes header + data to path. */
static bool write_blob(Graph *g, const char *path, int64_t data_bytes, const char *build_id,
                       Status *st, const ProgressHook *prog) {
  progress_report(prog, "packing weights", 0, (double)data_bytes, "B");
  FILE *f = fopen(path, "wb");
  if (!f) {
    fail(st, 1, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  CnnrtBlobHeader h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, CNNRT_BLOB_MAGIC, 8);
  h.data_bytes = (uint64_t)data_bytes;
  snprintf(h.build_id, sizeof h.build_id, "%s", build_id);
  fwrite(&h, sizeof h, 1, f);
  /* Parameters in offset order: walk g->params then stragglers, the same
     order layout_blob used, padding each to 64 bytes. */
  static const unsigned char zeros[64];
  int64_t pos = 0;
  bool ok = true;
  for (int pass = 0; pass < 2 && ok; pass++) {
    int count = pass == 0 ? g->params.len : g->nodes.len;
    for (int i = 0; i < count && ok; i++) {
      Param *ps[IR_MAX_PARAMS];
      int np = 0;
      if (pass == 0) {
        ps[np++] = GRAPH_PARAM(g, i);
      } else {
        Node *n = GRAPH_NODE(g, i);
        if (!is_kernel_node(n))
          continue;
        for (int k = 0; k < n->nparams; k++)
          if (n->params[k])
            ps[np++] = n->params[k];
      }
      for (int k = 0; k < np; k++) {
        Param *p = ps[k];
        if (p->blob_offset != pos) /* unused, or already written */
          continue;
        size_t bytes = (size_t)blob_numel(g, p) * 4;
        /* In the kernel's packed order if its user wants that. */
        float *packed = NULL;
        for (int j = 0; j < g->nodes.len && !packed; j++)
          packed = be_packed_weights(GRAPH_NODE(g, j), p);
        if (!write_reporting(f, packed ? packed : p->data, bytes, pos, data_bytes, prog))
          ok = false;
        free(packed);
        size_t pad = (64 - bytes % 64) % 64;
        fwrite(zeros, 1, pad, f);
        pos += (int64_t)(bytes + pad);
      }
    }
  }
  if (pos != data_bytes && ok) {
    fail(st, 2, "blob layout mismatch (%lld vs %lld bytes)", (long long)pos, (long long)data_bytes);
    fclose(f);
    return false;
  }
  if (fclose(f) != 0 || !ok) {
    fail(st, 1, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  progress_report(prog, "packing weights", (double)data_bytes, (double)data_bytes, "B");
  return true;
}

static void compute_build_id(Graph *g, char out[CNNRT_BUILD_ID_LEN + 1]) {
  Hash128 h = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ir_print(g, f);
  fclose(f);
  hash_bytes(&h, text, len);
  free(text);
  for (int i = 0; i < g->params.len; i++) {
    Param *p = GRAPH_PARAM(g, i);
    if (p->blob_offset < 0)
      continue;
    char buf[128];
    hash_str(&h, p->name);
    snprintf(buf, sizeof buf, "%d:%lld,%lld,%lld,%lld@%lld", p->rank, (long long)p->dims[0],
             (long long)p->dims[1], (long long)p->dims[2], (long long)p->dims[3],
             (long long)p->blob_offset);
    hash_str(&h, buf);
  }
  hash_str(&h, "cnncc " CNNCC_VERSION " blob v1");
  snprintf(out, CNNRT_BUILD_ID_LEN + 1, "%016llx%016llx", (unsigned long long)h.a,
           (unsigned long long)h.b);
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
      be_i64(c, (int64_t)ir_graph_macs(g)),
      be_i64(c, weight_bytes),
      be_i64(c, g->arena_bytes),
      const_string(c, o->compiler_ident ? o->compiler_ident : "cnncc " CNNCC_VERSION,
                   "cnnrt.compiler"),
  };
  hidden_const(c, "cnnrt_info", LLVMConstNamedStruct(info_ty, v, 11));
  hidden_const(c, "cnnrt_blob_size", be_i64(c, (int64_t)blob_size));
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

/* The address of node n's tensor inside cnnrt_forward. */
static LLVMValueRef tensor_addr(BeCtx *c, const Graph *g, const Node *n, LLVMValueRef arena,
                                LLVMValueRef *in_ptrs, Status *st) {
  Loc l;
  if (!resolve(g, n, &l, st))
    return NULL;
  LLVMValueRef base = l.space == 0 ? arena : in_ptrs[l.space - 1];
  if (l.off == 0)
    return base;
  LLVMValueRef off = be_i64(c, l.off);
  return LLVMBuildInBoundsGEP2(c->b, c->t_i8, base, &off, 1, "");
}

static bool emit_forward(BeCtx *c, Graph *g, Status *st, const ProgressHook *prog) {
  LLVMTypeRef pf_args[5] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_i64, c->t_i32};
  LLVMTypeRef pf_ty = LLVMFunctionType(c->t_void, pf_args, 5, 0);
  LLVMValueRef pf = LLVMAddFunction(c->mod, "cnnrt_launch", pf_ty);
  LLVMSetVisibility(pf, LLVMHiddenVisibility);
  be_add_enum_attr(c, pf, LLVMAttributeFunctionIndex, "nounwind");

  LLVMTypeRef fw_args[5] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr};
  LLVMValueRef fw =
      LLVMAddFunction(c->mod, "cnnrt_forward", LLVMFunctionType(c->t_void, fw_args, 5, 0));
  LLVMSetVisibility(fw, LLVMHiddenVisibility);

  /* Kernels first (each moves the builder into its own function). */
  int n_nodes = g->nodes.len;
  BeKernel *ks = calloc((size_t)(n_nodes ? n_nodes : 1), sizeof *ks);
  int maxp = 1;
  char err[512];
  int nk = 0, k_done = 0;
  for (int i = 0; i < n_nodes; i++)
    nk += is_kernel_node(GRAPH_NODE(g, i));
  progress_report(prog, "generating kernels", 0, nk, "layers");
  for (int i = 0; i < n_nodes; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (!is_kernel_node(n))
      continue;
    BeAlias mode;
    int inplace;
    if (!alias_mode(g, n, &mode, &inplace, st) ||
        !be_kernel_for(c, g, n, mode, inplace, &ks[i], err, sizeof err)) {
      if (st->rc == 0)
        fail(st, 2, "%s", err);
      free(ks);
      return false;
    }
    int nseg = 0;
    free(be_split_slices(g, n, &nseg));
    if (1 + n->nin + n->nparams + nseg > maxp)
      maxp = 1 + n->nin + n->nparams + nseg;
    progress_report(prog, "generating kernels", ++k_done, nk, "layers");
  }

  be_func_attrs(c, fw);
  be_func_begin(c, fw);
  LLVMValueRef ctx = LLVMGetParam(fw, 0), weights = LLVMGetParam(fw, 1);
  LLVMValueRef arena = LLVMGetParam(fw, 2), inputs = LLVMGetParam(fw, 3);
  LLVMValueRef outputs = LLVMGetParam(fw, 4);
  LLVMValueRef ptrs = LLVMBuildAlloca(c->b, LLVMArrayType2(c->t_ptr, (uint64_t)maxp), "ptrs");
  LLVMValueRef *in_ptrs = calloc((size_t)(g->ninputs ? g->ninputs : 1), sizeof *in_ptrs);
  for (int i = 0; i < g->ninputs; i++) {
    LLVMValueRef idx = be_i64(c, i);
    LLVMValueRef p = LLVMBuildInBoundsGEP2(c->b, c->t_ptr, inputs, &idx, 1, "");
    in_ptrs[i] = LLVMBuildLoad2(c->b, c->t_ptr, p, "input");
  }
  bool ok = true;
  int nlayers = 0;
  LLVMValueRef *lnames = calloc((size_t)(n_nodes ? n_nodes : 1), sizeof *lnames);
  LLVMValueRef *lflops = calloc((size_t)(n_nodes ? n_nodes : 1), sizeof *lflops);
  for (int i = 0; i < n_nodes && ok; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (!is_kernel_node(n))
      continue;
    {
      char *nm = NULL;
      size_t nlen = 0;
      FILE *f = open_memstream(&nm, &nlen);
      fprintf(f, "%s\t%s%s", n->name, ir_ops[n->op].name,
              n->layout == LAYOUT_NCHW16C ? "/16c" : "");
      fclose(f);
      char gname[64];
      snprintf(gname, sizeof gname, "cnnrt.layer.%d", nlayers);
      LLVMValueRef init = LLVMConstStringInContext(c->ctx, nm, (unsigned)strlen(nm), 0);
      LLVMValueRef gs = LLVMAddGlobal(c->mod, LLVMTypeOf(init), gname);
      LLVMSetInitializer(gs, init);
      LLVMSetGlobalConstant(gs, 1);
      LLVMSetLinkage(gs, LLVMPrivateLinkage);
      free(nm);
      lnames[nlayers] = gs;
      lflops[nlayers] = be_i64(c, 2 * (int64_t)ir_node_macs(n));
    }
    int layer = nlayers++;
    LLVMValueRef vals[BE_MAX_KERNEL_PTRS];
    int np = 0;
    vals[np++] = n->split ? LLVMConstNull(c->t_ptr) : tensor_addr(c, g, n, arena, in_ptrs, st);
    for (int k = 0; k < n->nin; k++)
      vals[np++] = tensor_addr(c, g, n->in[k], arena, in_ptrs, st);
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
    Node **segs = be_split_slices(g, n, &nseg);
    for (int s = 0; s < nseg; s++)
      vals[np++] = tensor_addr(c, g, segs[s], arena, in_ptrs, st);
    free(segs);
    for (int k = 0; k < np; k++) {
      if (!vals[k]) {
        ok = false;
        break;
      }
      LLVMValueRef idx = be_i64(c, k);
      LLVMBuildStore(c->b, vals[k], LLVMBuildInBoundsGEP2(c->b, c->t_ptr, ptrs, &idx, 1, ""));
    }
    if (!ok)
      break;
    LLVMValueRef args[5] = {ctx, ks[i].fn, ptrs, be_i64(c, ks[i].work), be_i32(c, layer)};
    LLVMBuildCall2(c->b, pf_ty, pf, args, 5, "");
  }
  for (int i = 0; i < g->noutputs && ok; i++) {
    const Node *n = g->outputs[i].node;
    LLVMValueRef src = tensor_addr(c, g, n, arena, in_ptrs, st);
    if (!src) {
      ok = false;
      break;
    }
    LLVMValueRef idx = be_i64(c, i);
    LLVMValueRef dst = LLVMBuildLoad2(
        c->b, c->t_ptr, LLVMBuildInBoundsGEP2(c->b, c->t_ptr, outputs, &idx, 1, ""), "out");
    LLVMBuildMemCpy(c->b, dst, 4, src, 4, be_i64(c, shape_numel(&n->shape) * 4));
  }
  LLVMBuildRetVoid(c->b);
  hidden_const(c, "cnnrt_num_layers", be_i32(c, nlayers));
  LLVMValueRef ln = LLVMConstArray2(c->t_ptr, lnames, (uint64_t)nlayers);
  hidden_const(c, "cnnrt_layer_names", ln);
  hidden_const(c, "cnnrt_layer_flops", LLVMConstArray2(c->t_i64, lflops, (uint64_t)nlayers));
  free(lnames);
  free(lflops);
  free(in_ptrs);
  free(ks);
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

int backend_compile(Graph *g, const BackendOptions *o, Diag *d) {
  Status st = {d, 0};
  double t0 = now_ms();
  if (!o || !o->output) {
    fail(&st, 2, "backend_compile: no output file");
    return st.rc;
  }
  if (!output_dir_ok(o->output, &st))
    return st.rc;
  if (o->emit == EMIT_SO && (!o->runtime_lib || access(o->runtime_lib, R_OK) != 0)) {
    fail(&st, 1, "runtime library '%s' not found (is cnncc installed correctly?)",
         o->runtime_lib ? o->runtime_lib : "(none)");
    return st.rc;
  }
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    Loc l;
    if (!n->dead && !n->split && !resolve(g, n, &l, &st))
      return st.rc;
  }
  for (int i = 0; i < g->noutputs; i++)
    if (!g->outputs[i].node || g->outputs[i].node->dead) {
      fail(&st, 2, "graph output %d is missing", i);
      return st.rc;
    }

  /* Weights. */
  be_winograd_configure(o);
  int64_t data_bytes = layout_blob(g, &st);
  if (data_bytes < 0)
    return st.rc;
  char build_id[CNNRT_BUILD_ID_LEN + 1];
  compute_build_id(g, build_id);

  char tmpl[] = "/tmp/cnncc.XXXXXX";
  const char *tmpdir_env = getenv("TMPDIR");
  char *workdir = xasprintf("%s/cnncc.XXXXXX", tmpdir_env && *tmpdir_env ? tmpdir_env : "/tmp");
  if (!mkdtemp(workdir)) {
    free(workdir);
    workdir = strdup(tmpl);
    if (!mkdtemp(workdir)) {
      fail(&st, 1, "cannot create a temporary directory: %s", strerror(errno));
      free(workdir);
      return st.rc;
    }
  }
  char *blob_path = xasprintf("%s/weights.bin", workdir);
  char *obj_path = xasprintf("%s/net.o", workdir);
  char *out_tmp = NULL, *weights_final = NULL, *weights_tmp = NULL;
  char *incbin_abs = NULL;
  bool blob_published = false;

  /* Where the blob goes: embedded from the work dir; beside the output for
     external weights; and also beside the output for .ll/.s, which name it
     by absolute path in their .incbin so they can still be assembled. */
  bool embed = !o->external_weights;
  const char *incbin = NULL;
  if (o->external_weights)
    weights_final = xasprintf("%s.weights", o->output);
  else if (o->emit == EMIT_LLVM || o->emit == EMIT_ASM)
    weights_final = xasprintf("%s.blob", o->output);
  if (weights_final) {
    weights_tmp = temp_beside(weights_final, &st);
    if (!weights_tmp)
      goto done;
    if (!write_blob(g, weights_tmp, data_bytes, build_id, &st, o->progress))
      goto done;
    if (embed) {
      char *copy = strdup(weights_final), *copy2 = strdup(weights_final);
      char *dir = realpath(dirname(copy), NULL);
      incbin_abs = xasprintf("%s/%s", dir ? dir : ".", basename(copy2));
      free(dir);
      free(copy);
      free(copy2);
      incbin = incbin_abs;
      /* Publish the blob now: the .ll/.s name its final path (it is
         removed again on failure). */
      if (rename(weights_tmp, weights_final) != 0) {
        fail(&st, 1, "cannot write '%s': %s", weights_final, strerror(errno));
        goto done;
      }
      free(weights_tmp);
      weights_tmp = NULL;
      blob_published = true;
    }
  } else {
    if (!write_blob(g, blob_path, data_bytes, build_id, &st, o->progress))
      goto done;
    incbin = blob_path;
  }

  /* Target and module. */
  {
    char err[2048];
    char *cpu = NULL, *features = NULL;
    LLVMTargetMachineRef tm = be_target_machine(o, &cpu, &features, err, sizeof err);
    if (!tm) {
      fail(&st, 1, "%s", err);
      goto done;
    }
    BeCtx c = {0};
    c.ctx = LLVMContextCreate();
    LlvmDiag llvm_diag = {{0}};
    LLVMContextSetDiagnosticHandler(c.ctx, llvm_diag_handler, &llvm_diag);
    c.mod = LLVMModuleCreateWithNameInContext(g->name ? g->name : "net", c.ctx);
    c.b = LLVMCreateBuilderInContext(c.ctx);
    c.t_void = LLVMVoidTypeInContext(c.ctx);
    c.t_i1 = LLVMInt1TypeInContext(c.ctx);
    c.t_i8 = LLVMInt8TypeInContext(c.ctx);
    c.t_i32 = LLVMInt32TypeInContext(c.ctx);
    c.t_i64 = LLVMInt64TypeInContext(c.ctx);
    c.t_f32 = LLVMFloatTypeInContext(c.ctx);
    c.t_ptr = LLVMPointerTypeInContext(c.ctx, 0);
    LLVMTypeRef kargs[3] = {c.t_ptr, c.t_i64, c.t_i64};
    c.t_kernel = LLVMFunctionType(c.t_void, kargs, 3, 0);
    c.cpu = cpu;
    c.features = features;
    c.t_v16 = LLVMVectorType(c.t_f32, 16);
    c.avx512 = be_target_has_avx512(cpu, features);
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(c.mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(c.mod, td);
    LLVMDisposeTargetData(td);

    bool ok = emit_forward(&c, g, &st, o->progress);
    double t_ir = now_ms();
    if (ok) {
      emit_info(&c, g, o, data_bytes, embed ? sizeof(CnnrtBlobHeader) + (uint64_t)data_bytes : 0,
                build_id);
      if (!(embed && o->emit == EMIT_ASM))
        emit_blob_symbol(&c, embed ? incbin : NULL, sizeof(CnnrtBlobHeader) + (uint64_t)data_bytes);
      char *msg = NULL;
      if (LLVMVerifyModule(c.mod, LLVMReturnStatusAction, &msg)) {
        fail(&st, 2, "generated LLVM module does not verify: %s", msg ? msg : "");
        ok = false;
      }
      LLVMDisposeMessage(msg);
    }
    if (ok && o->progress) { /* LLVM reports no progress: a busy step */
      int nfn = 0;
      for (LLVMValueRef fn = LLVMGetFirstFunction(c.mod); fn; fn = LLVMGetNextFunction(fn))
        nfn += !LLVMIsDeclaration(fn);
      char what[96];
      snprintf(what, sizeof what, "optimizing with LLVM (-O%d, %d functions)", o->opt_level, nfn);
      progress_report(o->progress, what, 0, -1, NULL);
    }
    if (ok && !be_optimize(c.mod, tm, o->opt_level, err, sizeof err)) {
      fail(&st, 2, "%s", err);
      ok = false;
    }
    double t_opt = now_ms();
    if (ok)
      progress_report(o->progress,
                      o->emit == EMIT_LLVM ? "writing LLVM IR" : "generating machine code", 0, -1,
                      NULL);
    if (ok) {
      switch (o->emit) {
      case EMIT_LLVM:
        out_tmp = temp_beside(o->output, &st);
        if (out_tmp) {
          char *msg = NULL;
          if (LLVMPrintModuleToFile(c.mod, out_tmp, &msg)) {
            fail(&st, 1, "cannot write '%s': %s", o->output, msg ? msg : "");
            ok = false;
          }
          LLVMDisposeMessage(msg);
        } else {
          ok = false;
        }
        break;
      case EMIT_ASM:
      case EMIT_OBJ:
        out_tmp = temp_beside(o->output, &st);
        if (!out_tmp || !be_emit_file(c.mod, tm, out_tmp, o->emit == EMIT_ASM, err, sizeof err)) {
          if (out_tmp)
            fail(&st, 2, "%s", err);
          ok = false;
        } else if (o->emit == EMIT_ASM && embed &&
                   !append_blob_asm(out_tmp, incbin,
                                    sizeof(CnnrtBlobHeader) + (uint64_t)data_bytes)) {
          fail(&st, 1, "cannot write '%s': %s", o->output, strerror(errno));
          ok = false;
        }
        break;
      case EMIT_SO:
        if (!be_emit_file(c.mod, tm, obj_path, false, err, sizeof err)) {
          fail(&st, 2, "%s", err);
          ok = false;
          break;
        }
        out_tmp = temp_beside(o->output, &st);
        if (!out_tmp) {
          ok = false;
          break;
        }
        progress_report(o->progress, "linking", 0, -1, NULL);
        if (!be_link_shared(o, obj_path, out_tmp, err, sizeof err)) {
          fail(&st, 1, "linking '%s' failed:\n%s", o->output, err);
          ok = false;
        }
        break;
      }
    }
    if (ok && llvm_diag.msg[0]) {
      fail(&st, 2, "LLVM: %s", llvm_diag.msg);
      ok = false;
    }
    double t_emit = now_ms();
    if (o->verbose)
      fprintf(stderr,
              "cnncc: backend: %d kernels (%d shared), %lld weight bytes; ir %.0f ms, "
              "opt %.0f ms, emit+link %.0f ms\n",
              c.nkernels, c.nshared, (long long)data_bytes, t_ir - t0, t_opt - t_ir,
              t_emit - t_opt);
    be_kernel_cache_free(&c);
    LLVMDisposeBuilder(c.b);
    LLVMDisposeModule(c.mod);
    LLVMContextDispose(c.ctx);
    LLVMDisposeTargetMachine(tm);
    free(cpu);
    free(features);
    if (!ok && st.rc == 0)
      st.rc = 2;
  }

  /* Publish: the weights first (a .so without its blob is useless), then
     the output; undo the weights if the second rename fails. */
  if (st.rc == 0 && weights_tmp && rename(weights_tmp, weights_final) != 0) {
    fail(&st, 1, "cannot write '%s': %s", weights_final, strerror(errno));
  } else if (st.rc == 0) {
    free(weights_tmp);
    weights_tmp = NULL;
  }
  if (st.rc == 0 && rename(out_tmp, o->output) != 0) {
    fail(&st, 1, "cannot write '%s': %s", o->output, strerror(errno));
    if (weights_final)
      unlink(weights_final);
  }

done:
  if (st.rc != 0 && out_tmp)
    unlink(out_tmp);
  if (st.rc != 0 && blob_published)
    unlink(weights_final);
  if (weights_tmp)
    unlink(weights_tmp);
  unlink(blob_path);
  unlink(obj_path);
  rmdir(workdir);
  free(out_tmp);
  free(weights_tmp);
  free(weights_final);
  free(incbin_abs);
  free(blob_path);
  free(obj_path);
  free(workdir);
  if (o->verbose && st.rc == 0)
    fprintf(stderr, "cnncc: backend: wrote %s in %.0f ms\n", o->output, now_ms() - t0);
  return st.rc;
}
