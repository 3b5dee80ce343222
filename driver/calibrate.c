/*
 * calibrate.c: --precision=int8 --calibrate FILE (docs/precision.md): the
 * calibration inputs, and the activation ranges measured on them.
 *
 * The ranges come from the network itself, compiled in fp32: main.c builds
 * a second graph, lets the quantize pass make the input of every conv and
 * linear it will quantize a graph output (QuantPlan.collect), compiles that
 * for the host into a temporary directory, and calib_measure dlopens the
 * .so and runs it on every calibration input, one at a time. So the ranges
 * are those of the exact tensors the int8 kernels will read, after the same
 * folding and fusion (a conv's fused ReLU included), computed by the same
 * fp32 kernels, for every op the compiler supports, with no second
 * implementation of the ops to keep in step.
 *
 * The file: float32 values, either a .npy (magic "\x93NUMPY", dtype '<f4',
 * C order, any shape) or raw little-endian floats; either way the values are
 * taken as consecutive inputs of the network's one input, so their count
 * must be a positive multiple of the input's size. Non-finite values are
 * refused.
 *
 * Methods: minmax (the range seen), or percentile P: per tensor, a
 * histogram of 4096 bins over the range seen (a second pass over the
 * inputs), and [lo, hi] the (100 - P)-th and P-th percentiles of all its
 * values, so rare outliers do not stretch the scale of everything else;
 * or entropy: the same histogram, and the range shrunk toward 0 by the
 * factor whose quantization to 256 levels loses the least information
 * (Kullback-Leibler divergence, calib_clip_entropy).
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "runtime/cnn.h"

#define CALIB_BINS 4096

/* The .npy header: dtype '<f4', C order; *count = product of the shape. */
static bool npy_header(FILE *f, const char *path, int64_t *count, Diag *d) {
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10) {
    diag_plain(d, DIAG_ERROR, "--calibrate: '%s': truncated .npy header", path);
    return false;
  }
  size_t hl = pre[8] | (size_t)pre[9] << 8;
  if (pre[6] >= 2) { /* version 2 and 3: a 4-byte header length */
    unsigned char b[2];
    if (fread(b, 1, 2, f) != 2) {
      diag_plain(d, DIAG_ERROR, "--calibrate: '%s': truncated .npy header", path);
      return false;
    }
    hl |= (size_t)b[0] << 16 | (size_t)b[1] << 24;
  }
  char *h = xcalloc(hl + 1, 1);
  bool ok = fread(h, 1, hl, f) == hl;
  const char *descr = ok ? strstr(h, "'descr':") : NULL, *shape = ok ? strstr(h, "'shape':") : NULL;
  if (!descr || !shape || !strstr(h, "'fortran_order': False")) {
    diag_plain(d, DIAG_ERROR, "--calibrate: '%s': not a C-order .npy array", path);
    free(h);
    return false;
  }
  if (!strstr(descr, "'<f4'")) {
    diag_plain(d, DIAG_ERROR,
               "--calibrate: '%s': the array's dtype must be float32 ('<f4'), got %.16s", path,
               descr + 8);
    free(h);
    return false;
  }
  int64_t n = 1;
  for (const char *p = strchr(shape, '(') + 1; *p && *p != ')'; p++)
    if (*p >= '0' && *p <= '9')
      n *= strtoll(p, (char **)&p, 10), p--;
  *count = n;
  free(h);
  return true;
}

bool calib_load(const char *path, int64_t numel, float **data, int64_t *nsamples, Diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    diag_plain(d, DIAG_ERROR, "--calibrate: cannot open '%s': %s", path, strerror(errno));
    return false;
  }
  char magic[6] = {0};
  bool npy = fread(magic, 1, 6, f) == 6 && memcmp(magic, "\x93NUMPY", 6) == 0;
  int64_t count = -1;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (npy ? !npy_header(f, path, &count, d) : false) {
    fclose(f);
    return false;
  }
  if (!npy) {
    if (size % 4) {
      diag_plain(d, DIAG_ERROR, "--calibrate: '%s': %ld bytes is not a whole number of float32s",
                 path, size);
      fclose(f);
      return false;
    }
    count = size / 4;
  }
  if (count <= 0 || count % numel) {
    diag_plain(d, DIAG_ERROR,
               "--calibrate: '%s' holds %lld float32 values, not a positive multiple of the "
               "input's %lld",
               path, (long long)count, (long long)numel);
    fclose(f);
    return false;
  }
  float *v = xmalloc((size_t)count * sizeof(float));
  size_t got = fread(v, sizeof(float), (size_t)count, f);
  fclose(f);
  int64_t bad = -1;
  for (int64_t i = 0; i < (int64_t)got && bad < 0; i++)
    if (!isfinite(v[i]))
      bad = i;
  if ((int64_t)got != count || bad >= 0) {
    if (bad >= 0)
      diag_plain(d, DIAG_ERROR, "--calibrate: '%s': value %lld is not finite", path,
                 (long long)bad);
    else
      diag_plain(d, DIAG_ERROR, "--calibrate: '%s': truncated (%zu of %lld values)", path, got,
                 (long long)count);
    free(v);
    return false;
  }
  *data = v;
  *nsamples = count / numel;
  return true;
}

static int64_t desc_numel(const cnn_tensor_desc *t) {
  int64_t n = 1;
  for (int i = 1; i < t->rank; i++)
    n *= t->dims[i];
  return n;
}

/* The .so's entry points (cnncc does not link the runtime itself). */
typedef struct {
  const cnn_info *(*get_info)(void);
  cnn_model *(*create)(const char *, char *, size_t);
  int (*run)(cnn_model *, int64_t, const float *const *, float *const *);
  const char *(*last_error)(const cnn_model *);
  void (*destroy)(cnn_model *);
} Api;

/* One pass over the inputs: per plan tensor, the range (hist NULL) or the
   histogram over the range found before. */
static bool calib_pass(const Api *api, cnn_model *m, const QuantPlan *plan, const float *data,
                       int64_t n, int64_t numel, int64_t *hist, Diag *d) {
  const cnn_info *info = api->get_info();
  int no = info->num_outputs;
  float **outs = xcalloc((size_t)no, sizeof *outs);
  for (int i = 0; i < no; i++)
    outs[i] = xmalloc((size_t)desc_numel(&info->outputs[i]) * sizeof(float));
  bool ok = true;
  for (int64_t s = 0; s < n && ok; s++) {
    const float *x = data + s * numel;
    if (api->run(m, 1, &x, outs) != CNN_OK) {
      diag_plain(d, DIAG_ERROR, "--calibrate: the calibration run failed: %s", api->last_error(m));
      ok = false;
    }
    for (int t = 0; t < plan->n && ok; t++) {
      int o = plan->output[t];
      const float *v = o < 0 ? x : outs[o];
      int64_t len = o < 0 ? numel : desc_numel(&info->outputs[o]);
      float lo = plan->lo[t], hi = plan->hi[t];
      for (int64_t i = 0; i < len; i++) {
        if (!hist) {
          plan->lo[t] = fminf(plan->lo[t], v[i]);
          plan->hi[t] = fmaxf(plan->hi[t], v[i]);
        } else if (hi > lo) {
          int64_t b = (int64_t)((v[i] - lo) / (hi - lo) * CALIB_BINS);
          hist[t * CALIB_BINS + (b < 0 ? 0 : b >= CALIB_BINS ? CALIB_BINS - 1 : b)]++;
        }
      }
    }
  }
  for (int i = 0; i < no; i++)
    free(outs[i]);
  free(outs);
  return ok;
}

/* [lo, hi] of tensor t clipped to its (100 - pct)-th and pct-th percentiles. */
static void clip_percentile(QuantPlan *plan, int t, const int64_t *h, double pct) {
  int64_t total = 0;
  for (int b = 0; b < CALIB_BINS; b++)
    total += h[b];
  double w = (plan->hi[t] - plan->lo[t]) / CALIB_BINS, tail = total * (1.0 - pct / 100.0);
  int blo = 0, bhi = CALIB_BINS - 1;
  for (int64_t acc = 0; blo < CALIB_BINS - 1 && (double)(acc += h[blo]) <= tail;)
    blo++;
  for (int64_t acc = 0; bhi > 0 && (double)(acc += h[bhi]) <= tail;)
    bhi--;
  float lo = plan->lo[t];
  plan->lo[t] = (float)(lo + blo * w);
  plan->hi[t] = (float)(lo + (bhi + 1) * w);
}

/* KL(P || Q) for the histogram clipped to bins [a, e): P is h inside,
   with the mass outside added to the end bins (what the clipped tensor
   holds); Q is h inside alone quantized to `levels` levels, each level's
   mass spread evenly over its non-empty bins (what the levels can tell
   apart), so clipping pays for the mass it moves and coarse levels for
   the shape they flatten. */
static double clipped_kl(const int64_t *h, int nbins, int a, int e, int levels) {
  int nb = e - a;
  double *p = xcalloc((size_t)nb, sizeof *p), *q = xcalloc((size_t)nb, sizeof *q);
  double ptot = 0, qtot = 0, kl = 0;
  for (int i = 0; i < nbins; i++)
    p[i < a ? 0 : i >= e ? nb - 1 : i - a] += (double)h[i];
  for (int j = 0; j < levels; j++) {
    int s = (int)((int64_t)j * nb / levels), t = (int)((int64_t)(j + 1) * nb / levels);
    double mass = 0;
    int nonzero = 0;
    for (int i = s; i < t; i++)
      mass += (double)h[a + i], nonzero += h[a + i] > 0;
    for (int i = s; i < t; i++)
      q[i] = h[a + i] > 0 ? mass / nonzero : 0;
  }
  for (int i = 0; i < nb; i++)
    ptot += p[i], qtot += q[i];
  for (int i = 0; i < nb && ptot > 0 && qtot > 0; i++)
    if (p[i] > 0) /* a bin Q has nothing in (an end bin holding only clipped mass): 1e-12 */
      kl += p[i] / ptot * log((p[i] / ptot) / (q[i] > 0 ? q[i] / qtot : 1e-12));
  free(p);
  free(q);
  return kl;
}

/* The bins [*a, *e) of the range shrunk by f toward the bin edge b0. */
static void shrunk_bins(int b0, int nbins, double f, int *a, int *e) {
  *a = b0 - (int)lround(b0 * f);
  *e = b0 + (int)lround((nbins - b0) * f);
}

void calib_clip_entropy(const int64_t *h, int nbins, double lo, double hi, double *flo,
                        double *fhi) {
  double w = (hi - lo) / nbins;
  int b0 = lo >= 0 ? 0 : hi <= 0 ? nbins : (int)(-lo / w); /* the bin edge nearest 0 */
  /* The bin of 0 leaves the comparison: 0 is exact at any range (it is the
     zero point), and a ReLU output's spike of zeros would otherwise decide
     the choice (spread over a level, it favours the narrowest range). */
  int64_t *hz = xmalloc((size_t)nbins * sizeof *hz);
  memcpy(hz, h, (size_t)nbins * sizeof *hz);
  hz[b0 < nbins ? b0 : nbins - 1] = 0;
  h = hz;
  double best = INFINITY, bestf = 1;
  for (int step = 0; step < 96; step++) {
    double f = 1.0 - step / 100.0;
    int a, e;
    shrunk_bins(b0, nbins, f, &a, &e);
    if (e - a < 256)
      break;
    double kl = clipped_kl(h, nbins, a, e, 256);
    if (kl < best)
      best = kl, bestf = f;
  }
  free(hz);
  int a, e;
  shrunk_bins(b0, nbins, bestf, &a, &e);
  *flo = lo + a * w, *fhi = lo + e * w;
}

bool calib_measure(const char *so, QuantPlan *plan, const float *data, int64_t n, int64_t numel,
                   double pct, bool entropy, Diag *d) {
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  Api api = {0};
  if (h) {
    *(void **)&api.get_info = dlsym(h, "cnn_get_info");
    *(void **)&api.create = dlsym(h, "cnn_create");
    *(void **)&api.run = dlsym(h, "cnn_run");
    *(void **)&api.last_error = dlsym(h, "cnn_last_error");
    *(void **)&api.destroy = dlsym(h, "cnn_destroy");
  }
  char err[512] = "entry points missing";
  bool all = api.get_info && api.create && api.run && api.last_error && api.destroy;
  cnn_model *m = all ? api.create(NULL, err, sizeof err) : NULL;
  if (!m) {
    diag_plain(d, DIAG_ERROR, "--calibrate: cannot load the calibration build '%s': %s", so,
               h ? err : dlerror());
    if (h)
      dlclose(h);
    return false;
  }
  for (int t = 0; t < plan->n; t++)
    plan->lo[t] = INFINITY, plan->hi[t] = -INFINITY;
  bool ok = calib_pass(&api, m, plan, data, n, numel, NULL, d);
  if (ok && (entropy || (pct > 0 && pct < 100))) {
    int64_t *hist = xcalloc((size_t)plan->n * CALIB_BINS, sizeof *hist);
    ok = calib_pass(&api, m, plan, data, n, numel, hist, d);
    for (int t = 0; ok && t < plan->n; t++) {
      if (!(plan->hi[t] > plan->lo[t]))
        continue;
      if (!entropy) {
        clip_percentile(plan, t, hist + t * CALIB_BINS, pct);
        continue;
      }
      double lo, hi;
      calib_clip_entropy(hist + t * CALIB_BINS, CALIB_BINS, plan->lo[t], plan->hi[t], &lo, &hi);
      plan->lo[t] = (float)lo, plan->hi[t] = (float)hi;
    }
    free(hist);
  }
  api.destroy(m);
  dlclose(h);
  return ok;
}
