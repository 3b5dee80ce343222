/*
 * backend_harness.c: the helpers of the backend tests (see backend_harness.h).
 */
#include "backend_harness.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_internal.h"
#include "passes/passes.h"
#include "passes/passes.h"
#include "ref_ops.h"

/* ------------------------------------------------------------ graph helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (float)((rng_state >> 40) * (1.0 / 16777216.0) * 2.0 - 1.0);
}

Node *input3(Graph *g, const char *name, int64_t c, int64_t h, int64_t w) {
  Node *n = ir_node_new(g, OP_INPUT, name, NULL, 0, (SrcLoc){0});
  n->shape.rank = 3;
  n->shape.d[0] = c, n->shape.d[1] = h, n->shape.d[2] = w;
  GraphIO *io = arena_alloc(g->arena, sizeof *io * (size_t)(g->ninputs + 1));
  if (g->ninputs)
    memcpy(io, g->inputs, sizeof *io * (size_t)g->ninputs);
  io[g->ninputs].name = n->name;
  io[g->ninputs].node = n;
  g->inputs = io;
  g->ninputs++;
  return n;
}

Node *input1(Graph *g, const char *name, int64_t f) {
  Node *n = input3(g, name, f, 1, 1);
  n->shape.rank = 1;
  return n;
}

void output(Graph *g, Node *n) {
  GraphIO *io = arena_alloc(g->arena, sizeof *io * (size_t)(g->noutputs + 1));
  if (g->noutputs)
    memcpy(io, g->outputs, sizeof *io * (size_t)g->noutputs);
  io[g->noutputs].name = n->name;
  io[g->noutputs].node = n;
  g->outputs = io;
  g->noutputs++;
}

Node *op(Graph *g, Op o, Node *const *in, int nin) {
  return ir_node_new(g, o, NULL, in, nin, (SrcLoc){0});
}
Node *op1(Graph *g, Op o, Node *in) { return op(g, o, &in, 1); }

/* Shape inference, then random parameters (variances positive). */
Node *fin(Graph *g, Node *n) {
  char err[256];
  cr_assert(ir_infer_shape(g, n, err, sizeof err), "infer %s: %s", n->name, err);
  for (int k = 0; k < n->nparams; k++) {
    Param *p = n->params[k];
    if (!p)
      continue;
    int64_t cnt = param_numel(p);
    p->data = arena_alloc(g->arena, sizeof(float) * (size_t)cnt);
    for (int64_t i = 0; i < cnt; i++) {
      float v = frand();
      if (n->op == OP_BATCHNORM && k == P_VAR)
        v = 0.5f + fabsf(v);
      p->data[i] = v;
    }
  }
  return n;
}

void add_residual(Graph *g, Node *n, Node *r) {
  Node **in = arena_alloc(g->arena, sizeof(Node *) * (size_t)(n->nin + 1));
  memcpy(in, n->in, sizeof(Node *) * (size_t)n->nin);
  in[n->nin] = r;
  n->in = in;
  n->epi.residual = n->nin++;
}

const Act harness_acts[] = {
    {.kind = ACT_RELU},
    {.kind = ACT_CLAMP, .a = 0, .b = 6},
    {.kind = ACT_CLAMP, .a = -1, .b = 1.5f},
    {.kind = ACT_SIGMOID},
    {.kind = ACT_HARDSIGMOID, .a = 1.0f / 6, .b = 0.5f},
    {.kind = ACT_HARDSIGMOID, .a = 0.2f, .b = 0.5f},
    {.kind = ACT_HARDSWISH},
    {.kind = ACT_SILU},
    {.kind = ACT_GELU},
    {.kind = ACT_GELU_TANH},
};
const int harness_nacts = (int)(sizeof harness_acts / sizeof harness_acts[0]);

Node *act_node(Graph *g, Node *x, const Act *a) {
  static const Op ops[] = {[ACT_RELU] = OP_RELU,           [ACT_CLAMP] = OP_CLAMP,
                           [ACT_SIGMOID] = OP_SIGMOID,     [ACT_HARDSIGMOID] = OP_HARDSIGMOID,
                           [ACT_HARDSWISH] = OP_HARDSWISH, [ACT_SILU] = OP_SILU,
                           [ACT_GELU] = OP_GELU,           [ACT_GELU_TANH] = OP_GELU};
  cr_assert(a->kind > ACT_NONE && a->kind <= ACT_GELU_TANH);
  Node *n = op1(g, ops[a->kind], x);
  if (a->kind == ACT_CLAMP)
    n->attr.clamp_min = a->a, n->attr.clamp_max = a->b;
  if (a->kind == ACT_HARDSIGMOID)
    n->attr.hs_alpha = a->a, n->attr.hs_beta = a->b;
  n->attr.gelu_tanh = a->kind == ACT_GELU_TANH;
  fin(g, n);
  Act got = ir_node_act(n);
  cr_assert(ir_act_eq(&got, a), "act_node: the op computes another activation");
  return n;
}

void scale_weight(Node *n, float s) {
  Param *w = n->params[P_WEIGHT];
  for (int64_t i = 0; i < param_numel(w); i++)
    w->data[i] *= s;
}

/* The local planner: see backend_harness.h. */
void plan(Graph *g) {
  int64_t off = g->arena_bytes;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->mem.kind != MEM_NONE)
      continue;
    if (n->op == OP_INPUT) {
      for (int k = 0; k < g->ninputs; k++)
        if (g->inputs[k].node == n)
          n->mem = (Mem){.kind = MEM_INPUT, .index = k};
    } else if (ir_ops[n->op].flags & OPF_VIEW) {
      int64_t at = 0; /* a slice's channels start inside its input */
      if (n->op == OP_SLICE)
        at = n->attr.slice_begin * n->shape.d[1] * n->shape.d[2] * (int64_t)sizeof(float);
      n->mem = (Mem){.kind = MEM_ALIAS, .alias_of = n->in[0], .offset = at};
    } else {
      n->mem = (Mem){.kind = MEM_ARENA, .offset = off};
      off += (shape_numel(&n->shape) * 4 + 63) & ~(int64_t)63;
    }
  }
  g->arena_bytes = off;
  g->num_params_orig = ir_graph_param_count(g, true);
}

/* ------------------------------------------------------------ reference run */

/* How often each regime of each activation was reached in the reference
   (pre-activation values), by node id, over one compare(). */
typedef struct {
  Act act;
  int64_t count[REF_MAX_REGIMES];
  bool used;
} Tally;
static Tally *tallies;
static int ntallies;
bool harness_regimes_optional;

static void tally(const Node *n, const Act *a, const float *x, int64_t N) {
  if (!tallies || n->id >= ntallies)
    return;
  Tally *t = &tallies[n->id];
  t->act = *a;
  t->used = true;
  for (int64_t i = 0; i < N; i++)
    t->count[ref_act_regime(a, x[i])]++;
}

/* Prints the share of each regime of every activation of the reference, and
   fails the test when one was never reached (unless
   harness_regimes_optional). */
static void report_regimes(const Graph *g) {
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->id >= ntallies || !tallies[n->id].used)
      continue;
    const Tally *t = &tallies[n->id];
    const char *names[REF_MAX_REGIMES];
    int nr = ref_act_regimes(&t->act, names);
    int64_t total = 0;
    for (int r = 0; r < nr; r++)
      total += t->count[r];
    char act[64], line[512];
    int k = snprintf(line, sizeof line, "regimes of %s '%s':", ir_act_str(&t->act, act, sizeof act),
                     n->name);
    for (int r = 0; r < nr && k < (int)sizeof line; r++)
      k += snprintf(line + k, sizeof line - (size_t)k, "%s %s %.1f%%", r ? "," : "", names[r],
                    100.0 * (double)t->count[r] / (double)(total ? total : 1));
    fprintf(stderr, "%s\n", line);
    for (int r = 0; r < nr && !harness_regimes_optional; r++)
      cr_assert(t->count[r] > 0, "%s: regime '%s' never reached: scale the inputs or weights", line,
                names[r]);
  }
}

static float *ref_node(const Node *n, float **vals) {
  int64_t N = shape_numel(&n->shape);
  float *y = calloc((size_t)N, sizeof(float));
  const float *x = n->nin ? vals[n->in[0]->id] : NULL;
  const Shape *is = n->nin ? &n->in[0]->shape : NULL;
  const Attrs *a = &n->attr;
#define PD(k) (n->nparams > (k) && n->params[k] ? n->params[k]->data : NULL)
  int64_t C = is ? is->d[0] : 0;
  int64_t HW = is ? shape_numel(is) / C : 0;
  int64_t oh = 0, ow = 0;
  switch (n->op) {
  case OP_CONV2D: {
    float *gated = NULL; /* passes/fuse_gate.c: the conv reads x * gate */
    if (n->epi.gate >= 0) {
      gated = malloc(sizeof(float) * (size_t)(C * HW));
      ref_mul(x, vals[n->in[n->epi.gate]->id], C, HW, true, gated);
      x = gated;
    }
    ref_conv2d(x, C, is->d[1], is->d[2], PD(P_WEIGHT), PD(P_BIAS), a->out_channels, a->kernel,
               a->stride, a->pad, a->dilation, a->groups, y, &oh, &ow);
    cr_assert(oh == n->shape.d[1] && ow == n->shape.d[2], "conv shape");
    free(gated);
    break;
  }
  case OP_BATCHNORM:
    ref_batchnorm(x, C, HW, PD(P_WEIGHT), PD(P_BIAS), PD(P_MEAN), PD(P_VAR), a->eps, y);
    break;
  case OP_SCALESHIFT:
    ref_scaleshift(x, C, HW, PD(P_SCALE), PD(P_SHIFT), y);
    break;
  case OP_RELU:
    tally(n, &(Act){.kind = ACT_RELU}, x, N);
    ref_relu(x, N, y);
    break;
  case OP_MAXPOOL:
    ref_maxpool(x, C, is->d[1], is->d[2], a->kernel, a->stride, a->pad, a->dilation, a->ceil_mode,
                y, &oh, &ow);
    cr_assert(oh == n->shape.d[1] && ow == n->shape.d[2],
              "maxpool shape: ref %lldx%lld, IR %lldx%lld", (long long)oh, (long long)ow,
              (long long)n->shape.d[1], (long long)n->shape.d[2]);
    break;
  case OP_AVGPOOL:
    ref_avgpool(x, C, is->d[1], is->d[2], a->kernel, a->stride, a->pad, a->ceil_mode,
                a->count_include_pad, y, &oh, &ow);
    cr_assert(oh == n->shape.d[1] && ow == n->shape.d[2],
              "avgpool shape: ref %lldx%lld, IR %lldx%lld", (long long)oh, (long long)ow,
              (long long)n->shape.d[1], (long long)n->shape.d[2]);
    break;
  case OP_ADAPTIVE_AVGPOOL:
    ref_adaptive_avgpool(x, C, is->d[1], is->d[2], a->out_hw[0], a->out_hw[1], y);
    break;
  case OP_ADAPTIVE_MAXPOOL:
    ref_adaptive_maxpool(x, C, is->d[1], is->d[2], a->out_hw[0], a->out_hw[1], y);
    break;
  case OP_LRN:
    ref_lrn(x, C, HW, a->lrn_size, a->alpha, a->beta, a->k, y);
    break;
  case OP_LINEAR:
    ref_linear(x, shape_numel(is), PD(P_WEIGHT), PD(P_BIAS), a->out_features, y);
    break;
  case OP_FLATTEN:
  case OP_DROPOUT:
  case OP_REORDER: /* a layout change: the same values */
    memcpy(y, x, sizeof(float) * (size_t)N);
    break;
  case OP_SLICE:
    memcpy(y, x + a->slice_begin * (N / n->shape.d[0]), sizeof(float) * (size_t)N);
    break;
  case OP_CONCAT: {
    const float *xs[16];
    int64_t cs[16];
    for (int i = 0; i < n->nin; i++) {
      xs[i] = vals[n->in[i]->id];
      cs[i] = n->in[i]->shape.d[0];
    }
    ref_concat(xs, cs, n->nin, HW, y);
    break;
  }
  case OP_ADD:
  case OP_MEAN: {
    const float *xs[16];
    int nin = n->epi.residual >= 0 ? n->nin - 1 : n->nin;
    for (int i = 0; i < nin; i++)
      xs[i] = vals[n->in[i]->id];
    (n->op == OP_ADD ? ref_add : ref_mean)(xs, nin, N, y);
    break;
  }
  case OP_SCALE:
    ref_scale(x, N, a->scale, y);
    break;
  case OP_MUL: {
    int big = shape_eq(&n->in[0]->shape, &n->shape) ? 0 : 1;
    bool per_channel = !shape_eq(&n->in[0]->shape, &n->in[1]->shape);
    int64_t oc = n->shape.d[0];
    ref_mul(vals[n->in[big]->id], vals[n->in[1 - big]->id], oc, N / oc, per_channel, y);
    break;
  }
  case OP_LAYERNORM:
    ref_layernorm(x, C, HW, PD(P_WEIGHT), PD(P_BIAS), a->eps, y);
    break;
  case OP_CHANNEL_SHUFFLE:
    ref_channel_shuffle(x, C, HW, a->groups, y);
    break;
  case OP_PARAMETER:
    memcpy(y, n->params[P_WEIGHT]->data, sizeof(float) * (size_t)N);
    break;
  case OP_SOFTMAX:
    ref_softmax(x, C, HW, y);
    break;
  default:
    if (ir_ops[n->op].flags & OPF_ACT) {
      Act act = ir_node_act(n);
      tally(n, &act, x, N);
      memcpy(y, x, sizeof(float) * (size_t)N);
      ref_epilogue(y, NULL, N, &act);
      break;
    }
    cr_assert_fail("no reference for %s", ir_ops[n->op].name);
  }
#undef PD
  if (n->epi.residual >= 0)
    ref_epilogue(y, vals[n->in[n->epi.residual]->id], N, &(Act){.kind = ACT_NONE});
  if (n->epi.act.kind != ACT_NONE) {
    tally(n, &n->epi.act, y, N);
    ref_epilogue(y, NULL, N, &n->epi.act);
  }
  return y;
}

/* Reference outputs of one sample (caller frees each). */
static void ref_run(Graph *g, const float *const *inputs, float **outs) {
  float **vals = calloc((size_t)g->next_id, sizeof *vals);
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->dead)
      continue;
    if (n->op == OP_INPUT) {
      int64_t N = shape_numel(&n->shape);
      vals[n->id] = malloc(sizeof(float) * (size_t)N);
      for (int k = 0; k < g->ninputs; k++)
        if (g->inputs[k].node == n)
          memcpy(vals[n->id], inputs[k], sizeof(float) * (size_t)N);
    } else {
      vals[n->id] = ref_node(n, vals);
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    int64_t N = shape_numel(&g->outputs[i].node->shape);
    outs[i] = malloc(sizeof(float) * (size_t)N);
    memcpy(outs[i], vals[g->outputs[i].node->id], sizeof(float) * (size_t)N);
  }
  for (int i = 0; i < g->next_id; i++)
    free(vals[i]);
  free(vals);
}

/* -------------------------------------------------------- compile and load */

void tmpdir_new(Lib *l) {
  snprintf(l->dir, sizeof l->dir, "/tmp/cnncc-be-XXXXXX");
  cr_assert(mkdtemp(l->dir), "mkdtemp");
  snprintf(l->so, sizeof l->so, "%s/net.so", l->dir);
}

static void tmpdir_remove(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  struct dirent *e;
  char p[512];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
      continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

BackendOptions opts_for(const char *out) {
  BackendOptions o = {0};
  o.output = out;
  o.emit = EMIT_SO;
  o.opt_level = 2;
  o.runtime_lib = CNNCC_RUNTIME_LIB;
  o.cc = "cc";
  o.compiler_ident = "cnncc test";
  tuning_defaults(&o.tune);
  return o;
}

int compile(Graph *g, const BackendOptions *o) {
  Diag *d = diag_new(stderr, false);
  int rc = backend_compile(g, o, d);
  diag_free(d);
  return rc;
}

void lib_open(Lib *l, const char *path) {
  l->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  cr_assert(l->h, "dlopen %s: %s", path, dlerror());
  *(void **)&l->info = dlsym(l->h, "cnn_get_info");
  *(void **)&l->create = dlsym(l->h, "cnn_create");
  *(void **)&l->run = dlsym(l->h, "cnn_run");
  *(void **)&l->threads = dlsym(l->h, "cnn_set_num_threads");
  *(void **)&l->last_error = dlsym(l->h, "cnn_last_error");
  *(void **)&l->destroy = dlsym(l->h, "cnn_destroy");
  cr_assert(l->info && l->create && l->run && l->threads && l->last_error && l->destroy);
}

void lib_build(Lib *l, Graph *g) { lib_build_for(l, g, PRECISION_FP32, NULL, true); }

void lib_build_for(Lib *l, Graph *g, Precision p, const char *cpu, bool amx) {
  tmpdir_new(l);
  plan(g);
  BackendOptions o = opts_for(l->so);
  o.precision = p;
  o.target_cpu = cpu;
  o.tune.amx = amx;
  cr_assert_eq(compile(g, &o), 0, "backend_compile failed");
  lib_open(l, l->so);
}

void lib_close(Lib *l) {
  if (l->h)
    dlclose(l->h);
  l->h = NULL;
  tmpdir_remove(l->dir);
}

/* Random inputs for `batch` samples. */
float **make_inputs(Graph *g, int64_t batch) {
  float **in = calloc((size_t)g->ninputs, sizeof *in);
  for (int i = 0; i < g->ninputs; i++) {
    int64_t N = shape_numel(&g->inputs[i].node->shape) * batch;
    in[i] = malloc(sizeof(float) * (size_t)N);
    for (int64_t k = 0; k < N; k++)
      in[i][k] = frand();
  }
  return in;
}

float **make_outputs(Graph *g, int64_t batch) {
  float **out = calloc((size_t)g->noutputs, sizeof *out);
  for (int i = 0; i < g->noutputs; i++) {
    int64_t N = shape_numel(&g->outputs[i].node->shape) * batch;
    out[i] = malloc(sizeof(float) * (size_t)N);
    for (int64_t k = 0; k < N; k++)
      out[i][k] = NAN;
  }
  return out;
}

void free_bufs(float **b, int n) {
  for (int i = 0; i < n; i++)
    free(b[i]);
  free(b);
}

/* Compares every output of every sample with the reference. */
void compare(Graph *g, int64_t batch, float **in, float **out, double rtol) {
  ntallies = g->next_id;
  tallies = calloc((size_t)ntallies, sizeof *tallies);
  for (int64_t s = 0; s < batch; s++) {
    const float *ins[16];
    float *refs[16];
    for (int i = 0; i < g->ninputs; i++)
      ins[i] = in[i] + s * shape_numel(&g->inputs[i].node->shape);
    ref_run(g, ins, refs);
    for (int i = 0; i < g->noutputs; i++) {
      int64_t N = shape_numel(&g->outputs[i].node->shape);
      const float *o = out[i] + s * N;
      double maxref = 0, maxdiff = 0;
      int64_t at = 0;
      for (int64_t k = 0; k < N; k++) {
        double d = fabs((double)o[k] - refs[i][k]);
        if (!(d <= maxdiff)) { /* catches NaN */
          maxdiff = isnan(d) ? INFINITY : d;
          at = k;
        }
        if (fabs(refs[i][k]) > maxref)
          maxref = fabs(refs[i][k]);
      }
      cr_assert(maxdiff <= rtol * maxref + 1e-6,
                "output '%s' sample %lld: max |diff| %g at %lld (ours %g, ref %g), "
                "max |ref| %g",
                g->outputs[i].name, (long long)s, maxdiff, (long long)at, (double)o[at],
                (double)refs[i][at], maxref);
      free(refs[i]);
    }
  }
  report_regimes(g);
  free(tallies);
  tallies = NULL;
  ntallies = 0;
}

/* The whole round trip: plan, compile, load, run, compare. */
void run_and_compare(Lib *l, Graph *g, int64_t batch, int nthreads, double rtol, float **in) {
  char err[256];
  cnn_model *m = l->create(NULL, err, sizeof err);
  cr_assert(m, "cnn_create: %s", err);
  cr_assert_eq(l->threads(m, nthreads), 0);
  if (!in)
    in = make_inputs(g, batch);
  float **out = make_outputs(g, batch);
  int rc = l->run(m, batch, (const float *const *)in, out);
  cr_assert_eq(rc, 0, "cnn_run: %s", l->last_error(m));
  compare(g, batch, in, out, rtol);
  free_bufs(in, g->ninputs);
  free_bufs(out, g->noutputs);
  l->destroy(m);
  lib_close(l);
  ir_graph_free(g);
}

void check_graph_opts(Graph *g, int64_t batch, int nthreads, double rtol) {
  Lib l = {0};
  lib_build(&l, g);
  run_and_compare(&l, g, batch, nthreads, rtol, NULL);
}

void check_graph(Graph *g) { check_graph_opts(g, 1, 1, 1e-5); }

Node *gated_conv1x1(Graph *g, int64_t C, int64_t H, int64_t W, int64_t oc) {
  Node *x = identity_conv(g, input3(g, "x", C, H, W));
  Node *mi[2] = {input3(g, "gate", C, 1, 1), x};
  Node *c = conv(g, fin(g, op(g, OP_MUL, mi, 2)), oc, 1, 1, 1, 0);
  output(g, c);
  pass_layout(g);
  pass_fuse_gate(g);
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  cr_assert(c->in[0] == x && c->epi.gate == 1, "the conv reads x and the gate");
  return c;
}

/* ------------------------------------------------------------ shared graphs */

Node *pool(Graph *g, Op o, Node *x, int k, int s, int p, bool ceil_mode, bool cip) {
  Node *n = op1(g, o, x);
  n->attr.kernel[0] = n->attr.kernel[1] = k;
  n->attr.stride[0] = n->attr.stride[1] = s;
  for (int i = 0; i < 4; i++)
    n->attr.pad[i] = p;
  n->attr.ceil_mode = ceil_mode;
  n->attr.count_include_pad = cip;
  return fin(g, n);
}

Graph *small_net(void) {
  Graph *g = ir_graph_new("smallnet");
  Node *x = input3(g, "image", 3, 32, 32);
  Node *c1 = op1(g, OP_CONV2D, x);
  c1->attr.out_channels = 16;
  c1->attr.kernel[0] = c1->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    c1->attr.pad[i] = 1;
  fin(g, c1);
  Node *bn = fin(g, op1(g, OP_BATCHNORM, c1));
  Node *r1 = fin(g, op1(g, OP_RELU, bn));
  Node *mp = pool(g, OP_MAXPOOL, r1, 3, 2, 1, false, true);
  Node *c2 = op1(g, OP_CONV2D, mp);
  c2->attr.out_channels = 16;
  c2->attr.kernel[0] = c2->attr.kernel[1] = 3;
  for (int i = 0; i < 4; i++)
    c2->attr.pad[i] = 1;
  fin(g, c2);
  add_residual(g, c2, mp);
  c2->epi.act.kind = ACT_RELU;
  Node *ap = op1(g, OP_ADAPTIVE_AVGPOOL, c2);
  ap->attr.out_hw[0] = ap->attr.out_hw[1] = 2;
  fin(g, ap);
  Node *fl = fin(g, op1(g, OP_FLATTEN, ap));
  Node *dr = fin(g, op1(g, OP_DROPOUT, fl));
  Node *fc = op1(g, OP_LINEAR, dr);
  fc->attr.out_features = 10;
  fin(g, fc);
  Node *sm = fin(g, op1(g, OP_SOFTMAX, fc));
  output(g, sm);
  output(g, fc);
  return g;
}

Node *conv(Graph *g, Node *x, int64_t oc, int64_t kh, int64_t kw, int64_t s, int64_t p) {
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = oc;
  c->attr.kernel[0] = kh, c->attr.kernel[1] = kw;
  c->attr.stride[0] = c->attr.stride[1] = s;
  for (int i = 0; i < 4; i++)
    c->attr.pad[i] = p;
  return fin(g, c);
}

Node *conv_geo(Graph *g, Node *x, int64_t oc, int64_t k, int64_t s, int64_t p, int64_t p2,
               int64_t d) {
  Node *c = op1(g, OP_CONV2D, x);
  c->attr.out_channels = oc;
  c->attr.kernel[0] = c->attr.kernel[1] = k;
  c->attr.stride[0] = c->attr.stride[1] = s;
  c->attr.dilation[0] = c->attr.dilation[1] = d;
  c->attr.pad[0] = c->attr.pad[1] = p;
  c->attr.pad[2] = c->attr.pad[3] = p2;
  return fin(g, c);
}

Node *identity_conv(Graph *g, Node *x) {
  int64_t C = x->shape.d[0];
  Node *c = conv(g, x, C, 1, 1, 1, 0);
  Param *w = c->params[P_WEIGHT];
  memset(w->data, 0, sizeof(float) * (size_t)(C * C));
  for (int64_t i = 0; i < C; i++)
    w->data[i * C + i] = 1.0f;
  memset(c->params[P_BIAS]->data, 0, sizeof(float) * (size_t)C);
  return c;
}

bool host_has(const char *names) {
  char *feat = backend_host_features(), name[64];
  bool all = feat != NULL;
  for (const char *p = names; all && *p;) {
    size_t len = strcspn(p, ",");
    snprintf(name, sizeof name, "%.*s", (int)len, p);
    all = be_has_feature(feat, name);
    p += len + (p[len] == ',');
  }
  free(feat);
  return all;
}

int count_kernel(Graph *g, Precision p, const char *impl) {
  return count_kernel_amx(g, p, true, impl);
}

int count_kernel_amx(Graph *g, Precision p, bool amx, const char *impl) {
  Tuning t;
  tuning_defaults(&t);
  t.amx = amx;
  BeConfig cf = {.tune = &t, .precision = p};
  char *feat = backend_host_features(), err[256];
  be_target_describe(backend_host_target(), "", feat, 0, false, -1, -1, -1, -1, &cf.target);
  BeChoice *ch = calloc((size_t)g->next_id + 1, sizeof *ch);
  cr_assert(be_choose_kernels(&cf, g, ch, err, sizeof err), "%s", err);
  int k = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    k += n->op == OP_CONV2D && !n->dead && strcmp(ch[n->id].impl->name, impl) == 0;
  }
  free(ch);
  free(feat);
  return k;
}

int count_layout(Graph *g, Layout L, Op o) {
  int k = 0;
  for (int i = 0; i < g->nodes.len; i++)
    k += GRAPH_NODE(g, i)->layout == L && GRAPH_NODE(g, i)->op == o;
  return k;
}

void split_into_elided_concat(Graph *g, Node *a, Node *s, bool blocked) {
  Node *sl[2];
  int64_t begin[2] = {0, 16}, cnt[2] = {16, 32};
  for (int i = 0; i < 2; i++) {
    sl[i] = op1(g, OP_SLICE, s);
    sl[i]->attr.slice_begin = begin[i];
    sl[i]->attr.slice_end = begin[i] + cnt[i];
    sl[i]->shape = (Shape){3, {cnt[i], 9, 7}};
  }
  Node *other = conv(g, a, 16, 1, 1, 1, 0);
  Node *in3[3] = {sl[1], other, sl[0]};
  Node *cat = fin(g, op(g, OP_CONCAT, in3, 3));
  output(g, other);
  output(g, cat);
  if (blocked) {
    pass_layout(g);
    ir_compact(g);
    cr_assert_eq(s->layout, LAYOUT_NCHW16C);
    cr_assert_eq(cat->layout, LAYOUT_NCHW16C);
  }
  /* cat at 0: [sl1 (32) | other (16) | sl0 (16)], then the rest. */
  int64_t plane = 9 * 7 * 4;
  cat->mem = (Mem){.kind = MEM_ARENA, .offset = 0};
  sl[1]->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 0};
  other->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 32 * plane};
  sl[0]->mem = (Mem){.kind = MEM_ALIAS, .alias_of = cat, .offset = 48 * plane};
  cat->elided = true;
  g->arena_bytes = (64 * plane + 63) & ~(int64_t)63;
}

/* ------------------------------------------------------- the blocked layout */

void check_blocked(Graph *g, int64_t batch, int threads, const char *cpu) {
  check_blocked_tuned(g, batch, threads, cpu, NULL);
}

void check_blocked_tuned(Graph *g, int64_t batch, int threads, const char *cpu,
                         const char *const *tune) {
  pass_layout(g);
  pass_fuse_gate(g); /* the one pass after layout that changes what a kernel computes */
  ir_compact(g);
  cr_assert_eq(ir_verify(g, stderr), 0);
  Lib l = {0};
  tmpdir_new(&l);
  plan(g);
  BackendOptions o = opts_for(l.so);
  o.target_cpu = cpu;
  for (int i = 0; tune && tune[i]; i++) {
    char err[256];
    cr_assert(tuning_set(&o.tune, tune[i], err, sizeof err), "%s", err);
  }
  cr_assert_eq(compile(g, &o), 0);
  lib_open(&l, l.so);
  run_and_compare(&l, g, batch, threads, 1e-5, NULL);
}

/* ------------------------------------------------------------------ shell */

char *run_cmd(const char *cmd) {
  FILE *p = popen(cmd, "r");
  cr_assert(p, "popen %s", cmd);
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  char line[1024];
  while (fgets(line, sizeof line, p))
    fputs(line, m);
  fclose(m);
  pclose(p);
  return buf;
}
