/*
 * backend_harness.h: what the backend tests share (tests/unit/test_kernels_*.c,
 * test_backend_compile.c, tests/robustness/test_abi.c). Built once as the
 * static library cnncc_test_harness (tests/CMakeLists.txt), with ref_ops.c.
 *
 * A test builds a small graph with the IR API, fills its parameters with
 * random values, plans memory with a tiny local planner (every tensor its
 * own arena slot; inputs MEM_INPUT; views MEM_ALIAS at their offset; tests may
 * pre-set aliases to exercise in-place ops and concat slices), compiles it
 * to a .so in a temporary directory, dlopens it, runs it through the public
 * ABI and compares every graph output with ref_ops.c:
 *     max |ours - ref| <= rtol * max |ref| + 1e-6
 * with rtol 1e-5 (scaled per test where a long reduction is involved).
 *
 * The helpers fail the calling test with cr_assert. Their names are short
 * on purpose, so that a test reads as the graph it builds; none clashes
 * with cnncc_core or libc. The random values come from one xorshift
 * sequence per test process (Criterion runs each test in its own), so a
 * test sees the same numbers whichever file it lives in.
 */
#ifndef CNNCC_TEST_BACKEND_HARNESS_H
#define CNNCC_TEST_BACKEND_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "ir/ir.h"
#include "runtime/cnn.h"

/* ------------------------------------------------------------ graph building */

/* A graph input of shape [c, h, w] (input1: [f]), appended to g->inputs. */
Node *input3(Graph *g, const char *name, int64_t c, int64_t h, int64_t w);
Node *input1(Graph *g, const char *name, int64_t f);
/* Appends n to g->outputs. */
void output(Graph *g, Node *n);
/* A node of op o on the given inputs; set its attributes, then fin() it. */
Node *op(Graph *g, Op o, Node *const *in, int nin);
Node *op1(Graph *g, Op o, Node *in);
/* Shape inference, then random parameters (batchnorm variances positive). */
Node *fin(Graph *g, Node *n);
/* r becomes n's residual input (the epilogue adds it). */
void add_residual(Graph *g, Node *n, Node *r);

/* A finished conv2d: oc channels, kh x kw kernel, stride s, padding p. */
Node *conv(Graph *g, Node *x, int64_t oc, int64_t kh, int64_t kw, int64_t s, int64_t p);
/* A finished square pool of op o (maxpool or avgpool). */
Node *pool(Graph *g, Op o, Node *x, int k, int s, int p, bool ceil_mode, bool cip);
/* conv-bn-relu, maxpool, a residual block, avgpool, flatten, dropout, fc,
   softmax ("smallnet", input "image" 3x32x32; outputs softmax and fc):
   most ops in one forward pass. */
Graph *small_net(void);
/* How many nodes of op o have layout L. */
int count_layout(Graph *g, Layout L, Op o);
/* A conv2d of x with every geometry attribute: oc channels, k x k, stride
   s, padding p top/left and p2 bottom/right, dilation d; finished. */
Node *conv_geo(Graph *g, Node *x, int64_t oc, int64_t k, int64_t s, int64_t p, int64_t p2,
               int64_t d);
/* A 1x1 conv of x with identity weights and zero bias: exact, and after
   passes/layout.c its output is NCHW16c (16 channels or more). */
Node *identity_conv(Graph *g, Node *x);
/* Whether the host's LLVM feature list has every feature of the
   comma-separated list names ("amx-tile,amx-int8"). */
bool host_has(const char *names);
/* How many live convs of g the kernel table (backend/kernels.c) puts on
   the kernel named impl, compiled for the host with precision p. */
int count_kernel(Graph *g, Precision p, const char *impl);
/* The same with the AMX kernels on or off (--tune amx). */
int count_kernel_amx(Graph *g, Precision p, bool amx, const char *impl);
/* An input x [C,H,W] read through an identity conv (so NCHW16c), times a
   graph input "gate" [C,1,1], read by a 1x1 conv to oc channels (the
   graph output); then the layout and fuse-gate passes, which leave the
   conv reading x and the gate (checked). Returns the conv. */
Node *gated_conv1x1(Graph *g, int64_t C, int64_t H, int64_t W, int64_t oc);

/* The tail of the split-conv tests: s (a split conv on a, 48 channels of
   9x7) feeds two slices, [0,16) and [16,48), which a concat takes in the
   order [16,48), a 16-channel 1x1 conv of a, [0,16); the concat and that
   conv are outputs. With `blocked`, passes/layout.c runs first and both s
   and the concat must be NCHW16c. Then the memory concat-elim would
   choose, by hand: the concat at arena offset 0 and elided, each input an
   alias at its channel offset. */
void split_into_elided_concat(Graph *g, Node *a, Node *s, bool blocked);

/* Every activation kind, with parameters that make each regime reachable
   from values of a few units (clamp to [0, 6] and [-1, 1.5], hardsigmoid
   PyTorch's and ONNX's): tests loop over them. */
extern const Act harness_acts[];
extern const int harness_nacts;
/* The activation op (relu, clamp, ...) computing a, on x, finished. */
Node *act_node(Graph *g, Node *x, const Act *a);
/* Multiplies n's weight by s (after fin): conv and linear outputs then
   spread over s times the range, to reach every regime of an activation. */
void scale_weight(Node *n, float s);

/* The local planner: see the top of the file. Nodes whose mem a test has
   already set are left alone. */
void plan(Graph *g);

/* -------------------------------------------------------- compile and load */

typedef struct {
  char dir[64]; /* the temporary directory */
  char so[128]; /* dir/net.so */
  void *h;
  const cnn_info *(*info)(void);
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  int (*threads)(cnn_model *, int);
  const char *(*last_error)(const cnn_model *);
  void (*destroy)(cnn_model *);
} Lib;

/* Makes l->dir (/tmp/cnncc-be-XXXXXX) and sets l->so. */
void tmpdir_new(Lib *l);
/* Options for a .so at `out`, -O2, the runtime just built, compiler
   ident "cnncc test". */
BackendOptions opts_for(const char *out);
/* backend_compile with diagnostics on stderr; its exit code. */
int compile(Graph *g, const BackendOptions *o);
/* dlopens `path` and finds the ABI functions the tests call. */
void lib_open(Lib *l, const char *path);
/* tmpdir_new, plan, compile with opts_for(l->so), lib_open. */
void lib_build(Lib *l, Graph *g);
/* The same with precision p, target CPU cpu (NULL: the host's) and the
   AMX kernels on or off (--tune amx). */
void lib_build_for(Lib *l, Graph *g, Precision p, const char *cpu, bool amx);
/* dlcloses and removes the temporary directory with its files. */
void lib_close(Lib *l);

/* ------------------------------------------------------ run and compare */

/* Random inputs, NaN-filled outputs, for `batch` samples; free_bufs frees
   either (n: g->ninputs or g->noutputs). */
float **make_inputs(Graph *g, int64_t batch);
float **make_outputs(Graph *g, int64_t batch);
void free_bufs(float **b, int n);
/* Compares every output of every sample with the reference (the bound at
   the top of the file). Then, for every activation (an activation op or a
   fused epilogue), prints on stderr the share of its inputs in each of its
   regimes (ref_act_regimes: clamp's bounds, hardswish's three pieces,
   sigmoid's tails, ...) and fails if one was never reached, unless the
   test set harness_regimes_optional. */
void compare(Graph *g, int64_t batch, float **in, float **out, double rtol);
extern bool harness_regimes_optional;

/* The second half of every round trip: create a model from the loaded
   .so, run `batch` samples of `in` (NULL: random ones; freed here) on
   `nthreads`, compare with the reference; closes l and frees g. */
void run_and_compare(Lib *l, Graph *g, int64_t batch, int nthreads, double rtol, float **in);
/* The whole round trip: plan, compile, load, run, compare; frees g. */
void check_graph_opts(Graph *g, int64_t batch, int nthreads, double rtol);
/* check_graph_opts(g, 1, 1, 1e-5). */
void check_graph(Graph *g);
/* passes/layout.c first (ir_verify after it), then the round trip for the
   target cpu (NULL: the host's) at rtol 1e-5; frees g. */
void check_blocked(Graph *g, int64_t batch, int threads, const char *cpu);
/* check_blocked with --tune values (a NULL-terminated list of "KEY=VALUE",
   or NULL). */
void check_blocked_tuned(Graph *g, int64_t batch, int threads, const char *cpu,
                         const char *const *tune);

/* The output of a shell command (caller frees). */
char *run_cmd(const char *cmd);

#endif
