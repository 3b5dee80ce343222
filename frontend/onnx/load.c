/*
 * load.c: the ONNX frontend's entry points.
 *
 *   onnx_load_file: the model, decoded (model.c)
 *     -> its opset of the default domain (7..17)
 *     -> every value's readers counted (a node folds into its only reader)
 *     -> initializers as constants; graph inputs as IR inputs (the first
 *        dimension is the batch; the rest must be known, or given with
 *        --input-shape)
 *     -> every node checked against the op table, all unsupported ones
 *        reported at once
 *     -> nodes in order: folded when their inputs are constants
 *        (fold.c), else lowered into IR nodes (lower.c)
 *     -> graph outputs, named as in the model.
 * The graph is named after the file (models exported by PyTorch all call
 * their graph "main_graph").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_internal.h"

bool onnx_file_sniff(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  unsigned char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  if (n <= 0)
    return false;
  /* Every exporter writes ModelProto.ir_version (field 1, a varint: key
     0x08) first; a spec is text, and a text file never holds a NUL. */
  if (buf[0] == 0x08)
    return true;
  for (ssize_t i = 0; i < n; i++)
    if (buf[i] == 0)
      return true;
  return false;
}

/* The model file's base name without extension, as the network's name. */
static const char *net_name(Arena *a, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  return arena_strndup(a, base, len);
}

static bool is_initializer(const Onnx__GraphProto *gp, const char *name) {
  for (size_t i = 0; i < gp->n_initializer; i++)
    if (gp->initializer[i]->name && strcmp(gp->initializer[i]->name, name) == 0)
      return true;
  return false;
}

static void count_uses(OxCtx *cx, const Onnx__GraphProto *gp) {
  for (int i = 0; i < cx->nnodes; i++) {
    const Onnx__NodeProto *n = cx->nodes[i];
    for (size_t k = 0; n && k < n->n_input; k++)
      if (n->input[k] && *n->input[k])
        ox_use(cx, n->input[k]);
  }
  for (size_t i = 0; i < gp->n_output; i++)
    if (gp->output[i]->name)
      ox_use(cx, gp->output[i]->name);
}

static bool initializers(OxCtx *cx, const Onnx__GraphProto *gp) {
  bool ok = true;
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *t = gp->initializer[i];
    if (!t->name || !*t->name) {
      ok = ox_error(cx, "initializer %zu has no name", i);
      continue;
    }
    OxValue *v = ox_value_new(cx, t->name, OXV_CONST);
    if (!v) {
      ok = false;
      continue;
    }
    char *what = arena_printf(cx->a, "initializer '%s'", t->name);
    ok = ox_tensor_const(cx, t, what, &v->c) && ok;
  }
  return ok;
}

/* --input-shape for `name`, or NULL. */
static const OnnxInputShape *given_shape(const OnnxOptions *o, const char *name) {
  for (int i = 0; o && i < o->nshapes; i++)
    if (strcmp(o->shapes[i].name, name) == 0)
      return &o->shapes[i];
  return NULL;
}

/* The per-sample shape of graph input vi into s. */
static bool input_shape(OxCtx *cx, const Onnx__ValueInfoProto *vi, Shape *s) {
  const char *name = vi->name;
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return ox_error(cx, "graph input '%s' is not a tensor", name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->has_elem_type && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
    return ox_error(cx, "graph input '%s' has element type %d; cnncc's inputs are float32", name,
                    (int)tt->elem_type);
  const OnnxInputShape *gs = given_shape(cx->opts, name);
  const Onnx__TensorShapeProto *sp = tt->shape;
  int rank = sp ? (int)sp->n_dim : -1;
  if (gs) {
    s->rank = gs->rank;
    memcpy(s->d, gs->dims, sizeof gs->dims);
  } else {
    if (rank != 4 && rank != 2) {
      ox_error(cx, "graph input '%s' has %s; cnncc takes [N, C, H, W] images or [N, F] vectors",
               name, rank < 0 ? "no shape" : arena_printf(cx->a, "rank %d", rank));
      ox_note(cx, "give its shape per sample with --input-shape %s=CxHxW", name);
      return false;
    }
    s->rank = rank == 4 ? 3 : 1;
    for (int k = 1; k < rank; k++) {
      const Onnx__TensorShapeProto__Dimension *dm = sp->dim[k];
      if (dm->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
          dm->dim_value <= 0) {
        ox_error(cx,
                 "dimension %d of graph input '%s' is %s; only the first (the batch) may be "
                 "symbolic",
                 k, name,
                 dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                     ? arena_printf(cx->a, "'%s'", dm->dim_param)
                     : "unknown");
        ox_note(cx, "give its shape per sample with --input-shape %s=%s", name,
                rank == 4 ? "CxHxW" : "F");
        return false;
      }
      s->d[k - 1] = dm->dim_value;
    }
  }
  if (rank > 0 && sp->dim[0]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
    int64_t b = sp->dim[0]->dim_value;
    cx->static_batch = cx->static_batch == 0 || cx->static_batch == b ? b : -1;
  }
  return true;
}

static bool graph_inputs(OxCtx *cx, const Onnx__GraphProto *gp) {
  bool ok = true;
  int n = 0;
  GraphIO *io = arena_alloc(cx->a, sizeof *io * (gp->n_input + 1));
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    if (!vi->name || !*vi->name) {
      ok = ox_error(cx, "graph input %zu has no name", i);
      continue;
    }
    if (is_initializer(gp, vi->name)) /* IR version < 4 lists weights as inputs */
      continue;
    Shape s = {0};
    if (!input_shape(cx, vi, &s)) {
      ok = false;
      continue;
    }
    Node *x = ir_node_new(cx->g, OP_INPUT, vi->name, NULL, 0, (SrcLoc){cx->path, 0, 0});
    ox_name_claim(cx, x->name);
    x->shape = s;
    char err[512];
    if (!ir_infer_shape(cx->g, x, err, sizeof err)) {
      ok = ox_error(cx, "%s", err);
      continue;
    }
    OxValue *v = ox_value_new(cx, vi->name, OXV_TENSOR);
    if (!v) {
      ok = false;
      continue;
    }
    v->node = x;
    io[n].name = x->name;
    io[n++].node = x;
  }
  for (int i = 0; cx->opts && i < cx->opts->nshapes; i++) {
    bool found = false;
    for (int k = 0; k < n; k++)
      found |= strcmp(io[k].name, cx->opts->shapes[i].name) == 0;
    if (!found)
      ok = ox_error(cx, "--input-shape names '%s', which is not an input of the model",
                    cx->opts->shapes[i].name);
  }
  if (ok && n == 0)
    ok = ox_error(cx, "the model has no input computed at run time");
  cx->g->inputs = io;
  cx->g->ninputs = n;
  return ok;
}

/* Every node names its op and has an output; the pattern matchers and the
   op table rely on it (every op cnncc reads has at least one output). */
static bool nodes_well_formed(OxCtx *cx) {
  bool ok = true;
  for (int i = 0; i < cx->nnodes; i++) {
    const Onnx__NodeProto *n = cx->nodes[i];
    if (!n)
      continue;
    cx->node = NULL;
    if (!n->op_type || !*n->op_type) {
      ox_error(cx, "node %d has no op_type", i);
      ok = false;
    } else if (n->n_output < 1 || !n->output[0]) {
      cx->node = n;
      ox_error(cx, "no output (node %d of the graph)", i);
      ok = false;
    }
  }
  cx->node = NULL;
  return ok;
}

/* Every node's op must be in the table: all the others are reported. */
static bool check_ops(OxCtx *cx) {
  int bad = 0;
  const char *seen[64];
  int nseen = 0;
  for (int i = 0; i < cx->nnodes; i++) {
    const Onnx__NodeProto *n = cx->nodes[i];
    if (!n)
      continue;
    if (!n->op_type || !*n->op_type)
      continue; /* reported by nodes_well_formed */
    const char *dom = n->domain && *n->domain ? n->domain : "ai.onnx";
    if (ox_op_find(n->domain, n->op_type, cx->opset))
      continue;
    cx->node = n;
    if (strcmp(dom, "ai.onnx") != 0)
      ox_error(cx, "op %s of domain '%s' is not supported (cnncc reads the default domain)",
               n->op_type, dom);
    else if (ox_op_known(n->op_type))
      ox_error(cx, "op %s is not supported at opset %lld", n->op_type, (long long)cx->opset);
    else if (ox_op_part_of(n->op_type))
      ox_error(cx,
               "op %s (opset %lld) is not supported by itself; cnncc reads it only as part of "
               "%s",
               n->op_type, (long long)cx->opset, ox_op_part_of(n->op_type));
    else
      ox_error(cx, "op %s (opset %lld) is not supported", n->op_type, (long long)cx->opset);
    bad++;
    bool dup = false;
    for (int k = 0; k < nseen; k++)
      dup |= strcmp(seen[k], n->op_type) == 0;
    if (!dup && nseen < 64)
      seen[nseen++] = n->op_type;
  }
  cx->node = NULL;
  if (bad) {
    char *list = arena_printf(cx->a, "%s", nseen ? seen[0] : "");
    for (int k = 1; k < nseen; k++)
      list = arena_printf(cx->a, "%s, %s", list, seen[k]);
    diag_report(cx->d, DIAG_NOTE, (SrcLoc){cx->path, 0, 0}, 0,
                "%d node%s of %d use%s ops cnncc does not read (%s); docs/onnx.md lists the "
                "supported ops and opsets",
                bad, bad == 1 ? "" : "s", cx->nnodes, bad == 1 ? "s" : "", list);
  }
  return bad == 0;
}

/* A node folds when its inputs are all constants (Shape: any input). */
static bool all_const(OxCtx *cx, const Onnx__NodeProto *n) {
  if (strcmp(n->op_type, "Shape") == 0)
    return true;
  for (size_t k = 0; k < n->n_input; k++) {
    if (!n->input[k] || !*n->input[k])
      continue;
    OxValue *v = ox_value(cx, n->input[k]);
    if (v && v->kind != OXV_CONST)
      return false;
  }
  return true;
}

/* The outputs of n, which was reported (or reads what was), as failed:
   their readers are skipped without a message of their own. */
static void fail_outputs(OxCtx *cx, const Onnx__NodeProto *n) {
  for (size_t k = 0; k < n->n_output; k++)
    if (n->output[k] && *n->output[k] && !ox_value(cx, n->output[k]))
      ox_value_new(cx, n->output[k], OXV_FAILED);
}

static bool reads_failed(OxCtx *cx, const Onnx__NodeProto *n) {
  for (size_t k = 0; k < n->n_input; k++) {
    OxValue *v = n->input[k] && *n->input[k] ? ox_value(cx, n->input[k]) : NULL;
    if (v && v->kind == OXV_FAILED)
      return true;
  }
  return false;
}

static bool lower_nodes(OxCtx *cx) {
  for (int i = 0; i < cx->nnodes && cx->errors < OX_MAX_ERRORS; i++) {
    const Onnx__NodeProto *n = cx->nodes[i];
    if (!n)
      continue;
    cx->node = n;
    int before = cx->errors;
    const OxOpInfo *op = ox_op_find(n->domain, n->op_type, cx->opset);
    if (!reads_failed(cx, n)) {
      if (all_const(cx, n) && ox_foldable(n->op_type))
        ox_fold(cx, n);
      else if (op->lower)
        op->lower(cx, n);
      else
        ox_error(cx, "its inputs must be constants: cnncc evaluates %s at compile time only",
                 n->op_type);
    }
    if (cx->errors > before || reads_failed(cx, n))
      fail_outputs(cx, n);
  }
  cx->node = NULL;
  return cx->errors == 0;
}

static bool graph_outputs(OxCtx *cx, const Onnx__GraphProto *gp) {
  GraphIO *io = arena_alloc(cx->a, sizeof *io * (gp->n_output + 1));
  int n = 0;
  for (size_t i = 0; i < gp->n_output; i++) {
    const char *name = gp->output[i]->name;
    OxValue *v = name ? ox_value(cx, name) : NULL;
    if (!v)
      ox_error(cx, "graph output '%s' is not computed by any node", name ? name : "?");
    else if (v->kind != OXV_TENSOR)
      ox_error(cx, "graph output '%s' is a constant; cnncc's outputs are computed at run time",
               name);
    else if (v->kind == OXV_FAILED)
      continue; /* its node was reported */
    else if (v->padded)
      ox_error(cx, "graph output '%s' comes from a Pad that no conv or pool absorbs", name);
    else if (v->permuted)
      ox_error(cx,
               "graph output '%s' is a transposed view of an [N, C, H, W] tensor; cnncc's "
               "outputs are [N, C, H, W] or [N, F]",
               name);
    else if (v->vec_ones)
      ox_error(cx,
               "graph output '%s' is a vector unsqueezed to rank %d; cnncc's outputs are "
               "[N, C, H, W] or [N, F]",
               name, ox_rank(v));
    else {
      io[n].name = arena_strdup(cx->a, name);
      io[n++].node = v->node;
    }
  }
  if (gp->n_output == 0)
    ox_error(cx, "the model has no outputs");
  cx->g->outputs = io;
  cx->g->noutputs = n;
  return cx->errors == 0;
}

/* The model (read already) into a graph. */
static Graph *load(OxCtx *cx) {
  const Onnx__GraphProto *gp = ox_model_proto(cx->model)->graph;
  Graph *g = ir_graph_new(NULL);
  cx->g = g;
  cx->a = g->arena;
  g->name = net_name(g->arena, cx->path);
  g->spec_file = arena_strdup(g->arena, cx->path);
  g->pool_pads_below_kernel = true; /* ONNX pools may pad up to kernel - 1 */
  ox_values_init(cx);
  cx->opset = ox_model_opset(cx, cx->model);
  bool ok = cx->opset > 0;
  cx->nnodes = (int)gp->n_node;
  cx->nodes = xcalloc((size_t)(cx->nnodes ? cx->nnodes : 1), sizeof *cx->nodes);
  for (int i = 0; i < cx->nnodes; i++)
    cx->nodes[i] = gp->node[i];
  if (ok) {
    ok = initializers(cx, gp) && nodes_well_formed(cx);
    if (ok)
      ox_patterns(cx);
    count_uses(cx, gp);
    ok = graph_inputs(cx, gp) && ok;
    ok = check_ops(cx) && ok;
  }
  ok = ok && lower_nodes(cx) && graph_outputs(cx, gp);
  if (ok) {
    ir_compact(g);
    g->num_params_orig = ir_graph_param_count(g, true);
  }
  if (cx->errors > OX_MAX_ERRORS)
    diag_report(cx->d, DIAG_NOTE, (SrcLoc){cx->path, 0, 0}, 0, "%d more errors not shown",
                cx->errors - OX_MAX_ERRORS);
  ox_values_free(cx);
  free(cx->nodes);
  ox_model_free(cx->model);
  if (!ok) {
    ir_graph_free(g);
    return NULL;
  }
  return g;
}

Graph *onnx_load_file(const char *path, const OnnxOptions *o, Diag *d) {
  OxCtx cx = {.d = d, .path = path, .opts = o};
  cx.model = ox_model_read(&cx, path);
  return cx.model ? load(&cx) : NULL;
}

Graph *onnx_load_memory(const void *bytes, size_t size, const char *name, const OnnxOptions *o,
                        Diag *d) {
  OxCtx cx = {.d = d, .path = name, .opts = o};
  cx.model = ox_model_from_memory(&cx, bytes, size);
  return cx.model ? load(&cx) : NULL;
}
