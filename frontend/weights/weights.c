/*
 * weights.c: binding parameter data to the graph.
 *
 * weights_load: every Param of the graph is looked up by its full name
 * (PyTorch's state_dict key) in a safetensors file. The check is complete
 * before anything is copied, and every offender is reported, not just the
 * first, so a user converting a checkpoint sees the whole list at once:
 *   - missing:     a parameter with no tensor of that name
 *   - unexpected:  a tensor no parameter wants (except "*.num_batches_tracked",
 *                  the BatchNorm counter PyTorch keeps in its state_dict);
 *                  "did you mean" names a missing parameter, one of the
 *                  tensor's shape first, never one that has its tensor
 *   - mis-shaped:  both shapes are shown, with the layer that owns the
 *                  parameter; shapes must match exactly (a linear
 *                  weight is [out, in], as nn.Linear stores it; a transposed
 *                  one gets a hint)
 *   - bad dtype:   anything but F32, F64, F16 and BF16 (converted to float32)
 * Errors are reported at the weights file (a line-0 location), with a note at
 * the spec line that defined the parameter where that is known. Every one is
 * counted, but only the first DIAG_MAX_ERRORS are shown (the wrong file for
 * a ResNet-101 has hundreds): the closing notes say how many more there
 * were, and the counts of each kind include them.
 *
 * weights_init_deterministic: the initialization used without --weights.
 * Each parameter gets its own generator, so its values depend only on the
 * seed and its name:
 *     state = seed ^ FNV-1a-64(name)
 *     x_i   = splitmix64(state)           (the state advances by the golden
 *                                          gamma 0x9e3779b97f4a7c15 each draw)
 *     u_i   = (x_i >> 40) * 2^-24         uniform in [0, 1), 24 bits
 *     w_i   = (2 u_i - 1) * bound         uniform in [-bound, bound)
 * with bound = 1/sqrt(fan_in), PyTorch's default for nn.Conv2d and nn.Linear
 * (kaiming_uniform with a = sqrt(5) gives exactly that for weights, and the
 * bias bound is the same). fan_in is in/groups * kh * kw for a conv weight
 * [out, in/groups, kh, kw] and `in` for a linear weight [out, in]; a bias
 * uses its layer's weight ("x.bias" -> "x.weight"). BatchNorm parameters
 * (recognised by a rank-1 ".weight") are constant: weight 1, bias 0,
 * running_mean 0, running_var 1; so are LayerNorm's (the same names and
 * shapes). The tensor of a `parameter` op (ConvNeXt's layer scale, named
 * by the layer itself) is 1, as any per-channel scale.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "weights_internal.h"

/* --------------------------------------------------------------- helpers */

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "[64, 3, 7, 7]", as torch.Size prints it ("[]" for a scalar), into buf. */
static char *dims_str(int rank, const int64_t *dims, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[");
  for (int i = 0; i < rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
  if (k < n)
    snprintf(buf + k, n - k, "]");
  return buf;
}

/* The layer that owns p, or NULL. */
static const Node *owner(const Graph *g, const Param *p) {
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *x = GRAPH_NODE(g, i);
    for (int k = 0; k < x->nparams; k++)
      if (x->params[k] == p)
        return x;
  }
  return NULL;
}

/* " (conv2d 'conv1')": the layer that owns p, for messages ("" if none). */
static const char *owner_str(const Graph *g, const Param *p, char *buf, size_t n) {
  const Node *x = owner(g, p);
  buf[0] = 0;
  if (x)
    snprintf(buf, n, " (%s '%s')", ir_ops[x->op].name, x->name);
  return buf;
}

/* What is wrong between the graph's parameters and a file's tensors, and
   how much of it is shown: every problem is counted, the errors beyond
   DIAG_MAX_ERRORS are not shown (`hidden`), nor are their notes. */
typedef struct {
  Diag *d;
  SrcLoc at; /* the weights file */
  int missing, unexpected, misshaped, baddtype;
  int hidden;
  bool quiet; /* the last error was not shown: nor are its notes */
} Mismatch;

/* An error at the weights file, shown while under the cap. */
static void mismatch_error(Mismatch *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mismatch_error(Mismatch *m, const char *fmt, ...) {
  m->quiet = diag_error_count(m->d) >= DIAG_MAX_ERRORS;
  if (m->quiet) {
    m->hidden++;
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(m->d, DIAG_ERROR, m->at, 1, fmt, ap);
  va_end(ap);
}

/* A note of the last error (at `loc`), shown if it was. */
static void mismatch_note(Mismatch *m, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mismatch_note(Mismatch *m, SrcLoc loc, const char *fmt, ...) {
  if (m->quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(m->d, DIAG_NOTE, loc, 1, fmt, ap);
  va_end(ap);
}

/* A conv or linear weight that differs only in its input size: say where the
   spec's input size comes from (the fix is often upstream of the layer, a
   missing pooling or a wrong input shape). */
static void note_input_size(Mismatch *m, const Graph *g, const Param *p, const StTensor *t) {
  const Node *x = owner(g, p);
  if (!x || x->nin < 1 || x->params[P_WEIGHT] != p || t->rank != p->rank ||
      t->shape[0] != p->dims[0] || t->shape[1] == p->dims[1])
    return;
  for (int k = 2; k < p->rank; k++)
    if (t->shape[k] != p->dims[k])
      return;
  const Node *in = x->in[0];
  char s[64], how[96] = "";
  if (in->op == OP_FLATTEN && in->nin == 1)
    snprintf(how, sizeof how, " (%s flattened)", shape_str(&in->in[0]->shape, s, sizeof s));
  else if (in->shape.rank == 3)
    snprintf(how, sizeof how, " (%s)", shape_str(&in->shape, s, sizeof s));
  if (x->op == OP_LINEAR && p->rank == 2)
    mismatch_note(m, m->at,
                  "linear '%s' gets %lld input feature%s from '%s'%s; the file's "
                  "weight takes %lld",
                  x->name, (long long)p->dims[1], p->dims[1] == 1 ? "" : "s", in->name, how,
                  (long long)t->shape[1]);
  else if (x->op == OP_CONV2D && p->rank == 4 && x->attr.groups == 1)
    mismatch_note(m, m->at,
                  "conv2d '%s' gets %lld input channel%s from '%s'; the file's weight "
                  "takes %lld",
                  x->name, (long long)p->dims[1], p->dims[1] == 1 ? "" : "s", in->name,
                  (long long)t->shape[1]);
}

static int cmp_param_name(const void *a, const void *b) {
  return strcmp((*(Param *const *)a)->name, (*(Param *const *)b)->name);
}

/* Params of g sorted by name (malloc'ed; caller frees). */
static Param **params_by_name(const Graph *g) {
  int n = g->params.len;
  Param **v = xmalloc((n ? n : 1) * sizeof *v);
  for (int i = 0; i < n; i++)
    v[i] = GRAPH_PARAM(g, i);
  qsort(v, n, sizeof *v, cmp_param_name);
  return v;
}

static Param *find_param(Param **sorted, int n, const char *name) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(name, sorted[mid]->name);
    if (c == 0)
      return sorted[mid];
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return NULL;
}

/* A note at the spec line that defined p, if known. */
static void note_defined_here(Mismatch *m, const Param *p) {
  if (p->loc.file && p->loc.line > 0)
    mismatch_note(m, p->loc, "parameter '%s' is defined here", p->name);
}

/* --------------------------------------------------------- weights_load */

bool weights_load(Graph *g, const char *path, Diag *d) {
  return weights_load_progress(g, path, d, NULL);
}

static bool same_shape(const Param *p, const StTensor *t) {
  bool same = t->rank == p->rank;
  for (int k = 0; same && k < p->rank; k++)
    same = t->shape[k] == p->dims[k];
  return same;
}

/* Every parameter against its tensor, in definition order (the order the
   user reads the spec in): missing, of a dtype cnncc cannot convert, or
   mis-shaped. Each is reported (at the file) and counted. */
static void check_params(const Graph *g, const StFile *f, Mismatch *m) {
  char a[128], b[128], o[160];
  for (int i = 0; i < g->params.len; i++) {
    Param *p = GRAPH_PARAM(g, i);
    const StTensor *t = st_find(f, p->name);
    if (!t) {
      mismatch_error(m, "missing tensor '%s' of shape %s%s", p->name,
                     dims_str(p->rank, p->dims, a, sizeof a), owner_str(g, p, o, sizeof o));
      note_defined_here(m, p);
      m->missing++;
      continue;
    }
    if (t->dtype == ST_OTHER) {
      mismatch_error(m,
                     "tensor '%s'%s has dtype %s; cnncc reads F32, F64, F16 and "
                     "BF16",
                     p->name, owner_str(g, p, o, sizeof o), t->dtype_name);
      note_defined_here(m, p);
      m->baddtype++;
    }
    if (!same_shape(p, t)) {
      mismatch_error(m, "expected shape %s for '%s'%s, got %s",
                     dims_str(p->rank, p->dims, b, sizeof b), p->name, owner_str(g, p, o, sizeof o),
                     dims_str(t->rank, t->shape, a, sizeof a));
      if (p->rank == 2 && t->rank == 2 && t->shape[0] == p->dims[1] && t->shape[1] == p->dims[0])
        mismatch_note(m, m->at,
                      "it looks transposed: a linear weight is [out, in], as "
                      "nn.Linear stores it");
      else
        note_input_size(m, g, p, t);
      note_defined_here(m, p);
      m->misshaped++;
    }
  }
}

/* The parameters no tensor of f is named after (malloc'ed; caller frees). */
static int params_missing(const Graph *g, const StFile *f, Param ***out) {
  *out = xmalloc((size_t)(g->params.len ? g->params.len : 1) * sizeof **out);
  int n = 0;
  for (int i = 0; i < g->params.len; i++)
    if (!st_find(f, GRAPH_PARAM(g, i)->name))
      (*out)[n++] = GRAPH_PARAM(g, i);
  return n;
}

/* "did you mean" for an unexpected tensor t: only a parameter still
   missing can be the tensor misnamed (one already bound is not), and of
   those, one of t's shape first; one of another shape is named with it. */
static void hint_missing(Mismatch *m, Param **missing, int n, const StTensor *t) {
  const char **same = xmalloc((size_t)(n ? n : 1) * sizeof *same);
  const char **other = xmalloc((size_t)(n ? n : 1) * sizeof *other);
  int ns = 0, no = 0;
  for (int i = 0; i < n; i++) {
    if (same_shape(missing[i], t))
      same[ns++] = missing[i]->name;
    else
      other[no++] = missing[i]->name;
  }
  const char *hint = diag_suggest(t->name, same, ns);
  if (hint) {
    mismatch_note(m, m->at, "did you mean '%s'?", hint);
  } else if ((hint = diag_suggest(t->name, other, no))) {
    const Param *p = NULL;
    for (int i = 0; i < n && !p; i++)
      if (missing[i]->name == hint)
        p = missing[i];
    char a[128];
    mismatch_note(m, m->at, "did you mean '%s'? (its shape in the spec is %s)", hint,
                  dims_str(p->rank, p->dims, a, sizeof a));
  }
  free(same);
  free(other);
}

/* Every tensor of the file that no parameter wants, in file order, with a
   missing parameter as a hint: reported and counted. */
static void check_tensors(const Graph *g, const StFile *f, Mismatch *m) {
  int np = g->params.len;
  Param **sorted = params_by_name(g);
  Param **missing;
  int nmissing = params_missing(g, f, &missing);
  char a[128];
  for (int i = 0; i < st_count(f); i++) {
    const StTensor *t = st_tensor(f, i);
    if (ends_with(t->name, ".num_batches_tracked") || find_param(sorted, np, t->name))
      continue;
    mismatch_error(m,
                   "unexpected tensor '%s' (%s, shape %s): the spec has no "
                   "parameter of that name",
                   t->name, t->dtype_name, dims_str(t->rank, t->shape, a, sizeof a));
    hint_missing(m, missing, nmissing, t);
    m->unexpected++;
  }
  free(missing);
  free(sorted);
}

/* The closing notes of a mismatch: how many errors were not shown, how
   many of each problem, how many parameters and tensors, and whether the
   file is another network's. */
static void note_mismatch(const Graph *g, const StFile *f, const Mismatch *m) {
  Diag *d = m->d;
  SrcLoc at = m->at;
  if (m->hidden)
    diag_report(d, DIAG_NOTE, at, 1, "%d more error%s not shown (cnncc shows at most %d)",
                m->hidden, m->hidden == 1 ? "" : "s", DIAG_MAX_ERRORS);
  char sum[256];
  int k = 0;
  sum[0] = 0;
#define PART(n, fmt)                                                                               \
  if (n)                                                                                           \
    k += snprintf(sum + k, sizeof sum - k, "%s%d " fmt, k ? ", " : "", n, n == 1 ? "" : "s");
  PART(m->missing, "missing tensor%s")
  PART(m->unexpected, "unexpected tensor%s")
  PART(m->misshaped, "mis-shaped tensor%s")
  PART(m->baddtype, "tensor%s with an unsupported dtype")
#undef PART
  int np = g->params.len, nt = st_count(f);
  diag_report(d, DIAG_NOTE, at, 1, "%s; the spec defines %d parameter%s, the file has %d tensor%s",
              sum, np, np == 1 ? "" : "s", nt, nt == 1 ? "" : "s");
  if (np > 0 && m->missing == np && nt > 0)
    diag_report(d, DIAG_NOTE, at, 1,
                "no tensor in the file has a parameter's name: are these "
                "the weights of another network?");
}

/* Copy every tensor into its parameter as float32 (the file is mapped: this
   is where it is read), in pieces of 4 MB of file so the progress display
   moves on a 500 MB file. */
static void copy_tensors(Graph *g, const StFile *f, const ProgressHook *progress) {
  int np = g->params.len;
  double total = 0, done = 0;
  for (int i = 0; i < np; i++)
    total += (double)st_find(f, GRAPH_PARAM(g, i)->name)->nbytes;
  progress_report(progress, "reading weights", 0, total, "B");
  for (int i = 0; i < np; i++) {
    Param *p = GRAPH_PARAM(g, i);
    const StTensor *t = st_find(f, p->name);
    int64_t n = param_numel(p);
    p->data = arena_alloc_aligned(g->arena, (size_t)(n ? n : 1) * 4, 64);
    uint64_t item = n ? t->nbytes / (uint64_t)n : 4;
    uint64_t chunk = ((uint64_t)4 << 20) / item;
    for (uint64_t k = 0; k < (uint64_t)n; k += chunk) {
      uint64_t m = (uint64_t)n - k < chunk ? (uint64_t)n - k : chunk;
      st_to_f32_range(t, p->data + k, k, m);
      done += (double)(m * item);
      progress_report(progress, "reading weights", done, total, "B");
    }
  }
  progress_report(progress, "reading weights", total, total, "B");
}

bool weights_load_progress(Graph *g, const char *path, Diag *d, const ProgressHook *progress) {
  SrcLoc at = {path, 0, 0};
  char err[512];
  StFile *f = st_open(path, err, sizeof err);
  if (!f) {
    diag_report(d, DIAG_ERROR, at, 1, "%s", err);
    return false;
  }
  /* every problem is reported before anything is copied */
  Mismatch m = {.d = d, .at = at};
  check_params(g, f, &m);
  check_tensors(g, f, &m);
  bool ok = !m.missing && !m.unexpected && !m.misshaped && !m.baddtype;
  if (ok)
    copy_tensors(g, f, progress);
  else
    note_mismatch(g, f, &m);
  st_close(f);
  return ok;
}

/* ---------------------------------------- weights_init_deterministic */

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 14695981039346656037ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* fan_in of a conv/linear weight: the product of all dims but the first. */
static int64_t weight_fan_in(const Param *w) {
  int64_t f = 1;
  for (int k = 1; k < w->rank; k++)
    f *= w->dims[k];
  return f;
}

static void fill_const(Param *p, float v) {
  int64_t n = param_numel(p);
  for (int64_t i = 0; i < n; i++)
    p->data[i] = v;
}

static void fill_uniform(Param *p, uint64_t seed, int64_t fan_in) {
  int64_t n = param_numel(p);
  if (fan_in <= 0) {
    fill_const(p, 0.0f);
    return;
  }
  double bound = 1.0 / sqrt((double)fan_in);
  uint64_t state = seed ^ fnv1a64(p->name);
  for (int64_t i = 0; i < n; i++) {
    double u = (double)(splitmix64(&state) >> 40) * (1.0 / 16777216.0);
    p->data[i] = (float)((2.0 * u - 1.0) * bound);
  }
}

void weights_init_deterministic(Graph *g, uint64_t seed) {
  int np = g->params.len;
  Param **sorted = params_by_name(g);
  for (int i = 0; i < np; i++) {
    Param *p = GRAPH_PARAM(g, i);
    int64_t n = param_numel(p);
    p->data = arena_alloc_aligned(g->arena, (size_t)(n ? n : 1) * 4, 64);

    if (ends_with(p->name, ".running_mean")) {
      fill_const(p, 0.0f);
    } else if (ends_with(p->name, ".running_var")) {
      fill_const(p, 1.0f);
    } else if (ends_with(p->name, ".bias")) {
      /* The layer's weight decides: BN (rank 1) or conv/linear. */
      size_t len = strlen(p->name) - strlen(".bias");
      char *wname = xmalloc(len + sizeof ".weight");
      memcpy(wname, p->name, len);
      strcpy(wname + len, ".weight");
      Param *w = find_param(sorted, np, wname);
      free(wname);
      if (!w || w->rank == 1)
        fill_const(p, 0.0f);
      else
        fill_uniform(p, seed, weight_fan_in(w));
    } else if (p->rank == 1) {
      fill_const(p, 1.0f); /* BN weight (or any per-channel scale) */
    } else {
      fill_uniform(p, seed, weight_fan_in(p));
    }
  }
  free(sorted);
  for (int i = 0; i < g->nodes.len; i++) {
    Node *x = GRAPH_NODE(g, i);
    if (x->op == OP_PARAMETER && x->nparams > P_WEIGHT && x->params[P_WEIGHT])
      fill_const(x->params[P_WEIGHT], 1.0f);
  }
}
