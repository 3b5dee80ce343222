/*
 * weights.c: binding parameter data to the graph.
 *
 * weights_load: every Param of the graph is looked up by its full name
 * (PyTorch's state_dict key) in a safetensors file. The check is complete
 * before anything is copied, and every offender is reported, not just the
 * first, so a user converting a checkpoint sees the whole list at once:
 *   - missing:     a parameter with no tensor of that name
 *   - unexpected:  a tensor no parameter wants (except "*.num_batches_tracked",
 *                  the BatchNorm counter PyTorch keeps in its state_dict)
 *   - mis-shaped:  both shapes are shown; shapes must match exactly (a linear
 *                  weight is [out, in], as nn.Linear stores it; a transposed
 *                  one gets a hint)
 *   - bad dtype:   anything but F32, F64, F16 and BF16 (converted to float32)
 * Errors are reported at the weights file (a line-0 location), with a note at
 * the spec line that defined the parameter where that is known.
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
 * running_mean 0, running_var 1.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

/* --------------------------------------------------------------- helpers */

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "64x3x7x7" (or "scalar" for rank 0) into buf. */
static char *dims_str(int rank, const int64_t *dims, char *buf, size_t n) {
  if (rank == 0) {
    snprintf(buf, n, "scalar");
    return buf;
  }
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < rank && k < n; i++)
    k += snprintf(buf + k, n - k, "%s%lld", i ? "x" : "", (long long)dims[i]);
  return buf;
}

static int cmp_param_name(const void *a, const void *b) {
  return strcmp((*(Param *const *)a)->name, (*(Param *const *)b)->name);
}

/* Params of g sorted by name (malloc'ed; caller frees). */
static Param **params_by_name(const Graph *g) {
  int n = g->params.len;
  Param **v = malloc((n ? n : 1) * sizeof *v);
  if (!v)
    return NULL;
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
static void note_defined_here(Diag *d, const Param *p) {
  if (p->loc.file && p->loc.line > 0)
    diag_report(d, DIAG_NOTE, p->loc, 1, "parameter '%s' is defined here",
                p->name);
}

/* --------------------------------------------------------- weights_load */

bool weights_load(Graph *g, const char *path, Diag *d) {
  SrcLoc at = {path, 0, 0};
  char err[512];
  StFile *f = st_open(path, err, sizeof err);
  if (!f) {
    diag_report(d, DIAG_ERROR, at, 1, "%s", err);
    return false;
  }

  int np = g->params.len;
  Param **sorted = params_by_name(g);
  if (!sorted) {
    diag_report(d, DIAG_ERROR, at, 1, "out of memory");
    st_close(f);
    return false;
  }

  int missing = 0, unexpected = 0, misshaped = 0, baddtype = 0;
  char a[128], b[128];

  /* Parameters, in definition order (the order the user reads the spec in). */
  for (int i = 0; i < np; i++) {
    Param *p = GRAPH_PARAM(g, i);
    const StTensor *t = st_find(f, p->name);
    if (!t) {
      diag_report(d, DIAG_ERROR, at, 1, "missing tensor '%s' (%s)", p->name,
                  dims_str(p->rank, p->dims, a, sizeof a));
      note_defined_here(d, p);
      missing++;
      continue;
    }
    if (t->dtype == ST_OTHER) {
      diag_report(d, DIAG_ERROR, at, 1,
                  "tensor '%s' has dtype %s; cnncc reads F32, F64, F16 and "
                  "BF16",
                  p->name, t->dtype_name);
      note_defined_here(d, p);
      baddtype++;
    }
    bool same = t->rank == p->rank;
    for (int k = 0; same && k < p->rank; k++)
      same = t->shape[k] == p->dims[k];
    if (!same) {
      diag_report(d, DIAG_ERROR, at, 1,
                  "tensor '%s' has shape %s, but the spec needs %s", p->name,
                  dims_str(t->rank, t->shape, a, sizeof a),
                  dims_str(p->rank, p->dims, b, sizeof b));
      if (p->rank == 2 && t->rank == 2 && t->shape[0] == p->dims[1] &&
          t->shape[1] == p->dims[0])
        diag_report(d, DIAG_NOTE, at, 1,
                    "it looks transposed: a linear weight is [out, in], as "
                    "nn.Linear stores it");
      note_defined_here(d, p);
      misshaped++;
    }
  }

  /* Tensors nobody asked for, in file order. */
  const char **names = malloc((np ? np : 1) * sizeof *names);
  for (int i = 0; names && i < np; i++)
    names[i] = GRAPH_PARAM(g, i)->name;
  for (int i = 0; i < st_count(f); i++) {
    const StTensor *t = st_tensor(f, i);
    if (ends_with(t->name, ".num_batches_tracked") ||
        find_param(sorted, np, t->name))
      continue;
    diag_report(d, DIAG_ERROR, at, 1,
                "unexpected tensor '%s' (%s, %s): the spec has no parameter "
                "of that name",
                t->name, dims_str(t->rank, t->shape, a, sizeof a),
                t->dtype_name);
    const char *hint = names ? diag_suggest(t->name, names, np) : NULL;
    if (hint)
      diag_report(d, DIAG_NOTE, at, 1, "did you mean '%s'?", hint);
    unexpected++;
  }
  free(names);
  free(sorted);

  int bad = missing + unexpected + misshaped + baddtype;
  if (bad) {
    char sum[256];
    int k = 0;
    sum[0] = 0;
#define PART(n, what)                                                          \
  if (n)                                                                       \
    k += snprintf(sum + k, sizeof sum - k, "%s%d %s", k ? ", " : "", n, what);
    PART(missing, "missing")
    PART(unexpected, "unexpected")
    PART(misshaped, "mis-shaped")
    PART(baddtype, "with an unsupported dtype")
#undef PART
    diag_report(d, DIAG_NOTE, at, 1,
                "%s tensor(s); the spec defines %d parameters, the file has "
                "%d tensors",
                sum, np, st_count(f));
    if (np > 0 && missing == np && st_count(f) > 0)
      diag_report(d, DIAG_NOTE, at, 1,
                  "no tensor in the file has a parameter's name: are these "
                  "the weights of another network?");
    st_close(f);
    return false;
  }

  for (int i = 0; i < np; i++) {
    Param *p = GRAPH_PARAM(g, i);
    const StTensor *t = st_find(f, p->name);
    int64_t n = param_numel(p);
    p->data = arena_alloc_aligned(g->arena, (size_t)(n ? n : 1) * 4, 64);
    st_to_f32(t, p->data);
  }
  st_close(f);
  return true;
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
      char *wname = malloc(len + sizeof ".weight");
      Param *w = NULL;
      if (wname && sorted) {
        memcpy(wname, p->name, len);
        strcpy(wname + len, ".weight");
        w = find_param(sorted, np, wname);
      }
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
}
