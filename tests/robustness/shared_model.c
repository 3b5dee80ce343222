/*
 * shared_model.c: one model, many host threads (docs/abi.md, "Threading").
 *
 *   shared_model [THREADS [CALLS]]     default 8 threads x 1000 calls
 *
 * Linked with the object file of a model (cnncc --emit=obj, tiny.yaml: two
 * inputs, two outputs, every kind of kernel) and with the runtime's
 * sources, all built with -fsanitize=thread (the test shared_model_tsan):
 * ThreadSanitizer reports any data race of the runtime and fails the test.
 * The generated kernels are not instrumented; that two calls never share
 * an arena shows in their bits instead.
 *
 * The reference: each of NS random samples run alone, batch 1, before any
 * thread starts. Then every thread makes CALLS calls of batches of 1 to 5
 * samples, each a different mix of the NS samples, and checks that every
 * output of every sample is bit for bit its reference. Thread 0 also
 * changes the model's settings now and then (2 or 1 pool threads, batch
 * parallelism on or off), which must wait for the runs in progress and
 * change no bit. Exit 0 when all agree, 1 otherwise.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"

#define NS 8    /* distinct samples */
#define MAXB 5  /* largest batch of a call */
#define MAXIO 4 /* inputs or outputs of the model, at most */

static cnn_model *model;
static const cnn_info *info;
static int64_t in_n[MAXIO], out_n[MAXIO];
static float *samples[MAXIO]; /* NS samples of each input */
static float *refs[MAXIO];    /* NS samples of each output */
static int calls = 1000;

static int64_t numel(const cnn_tensor_desc *d) {
  int64_t n = 1;
  for (int i = 1; i < d->rank; i++)
    n *= d->dims[i];
  return n;
}

typedef struct {
  int id;
  long bad, done;
} Worker;

/* One call: batch b of the samples first, first + step, ... (mod NS). */
static int one_call(Worker *w, int b, int first, int step, float **in, float **out) {
  int which[MAXB];
  for (int k = 0; k < b; k++) {
    which[k] = (first + k * step) % NS;
    for (int i = 0; i < info->num_inputs; i++)
      memcpy(in[i] + k * in_n[i], samples[i] + which[k] * in_n[i], sizeof(float) * in_n[i]);
  }
  int rc = cnn_run(model, b, (const float *const *)in, out);
  if (rc != CNN_OK) {
    fprintf(stderr, "shared_model: thread %d: cnn_run returned %d: %s\n", w->id, rc,
            cnn_last_error(model));
    return 1;
  }
  for (int k = 0; k < b; k++)
    for (int o = 0; o < info->num_outputs; o++)
      if (memcmp(out[o] + k * out_n[o], refs[o] + which[k] * out_n[o], sizeof(float) * out_n[o]) !=
          0) {
        if (w->bad < 5)
          fprintf(stderr,
                  "shared_model: thread %d: output '%s' of sample %d (in a batch of %d) "
                  "differs from the sample run alone\n",
                  w->id, info->outputs[o].name, which[k], b);
        return 1;
      }
  return 0;
}

static void *worker(void *arg) {
  Worker *w = arg;
  float *in[MAXIO], *out[MAXIO];
  for (int i = 0; i < info->num_inputs; i++)
    in[i] = malloc(sizeof(float) * in_n[i] * MAXB + 4) + 4; /* 4 bytes off: any float buffer */
  for (int o = 0; o < info->num_outputs; o++)
    out[o] = malloc(sizeof(float) * out_n[o] * MAXB);
  for (int c = 0; c < calls; c++) {
    if (w->id == 0 && c % 100 == 50) {
      cnn_set_num_threads(model, c % 200 == 50 ? 1 : 2);
      cnn_set_batch_parallel(model, c % 300 != 50);
    }
    int b = 1 + (c * 7 + w->id * 3) % MAXB;
    w->bad += one_call(w, b, c + w->id, 1 + (c + 2 * w->id) % (NS - 1), in, out);
    w->done++;
  }
  for (int i = 0; i < info->num_inputs; i++)
    free((char *)in[i] - 4);
  for (int o = 0; o < info->num_outputs; o++)
    free(out[o]);
  return NULL;
}

int main(int argc, char **argv) {
  int nthreads = argc > 1 ? atoi(argv[1]) : 8;
  if (argc > 2)
    calls = atoi(argv[2]);
  if (nthreads < 1 || nthreads > 64 || calls < 1) {
    fprintf(stderr, "usage: shared_model [THREADS (1-64) [CALLS]]\n");
    return 2;
  }
  char err[512];
  model = cnn_create(NULL, err, sizeof err);
  if (!model) {
    fprintf(stderr, "shared_model: cnn_create: %s\n", err);
    return 1;
  }
  info = cnn_get_info();
  if (info->num_inputs > MAXIO || info->num_outputs > MAXIO) {
    fprintf(stderr, "shared_model: the model has too many inputs or outputs\n");
    return 2;
  }
  cnn_set_num_threads(model, 2);
  uint32_t x = 12345;
  for (int i = 0; i < info->num_inputs; i++) {
    in_n[i] = numel(&info->inputs[i]);
    samples[i] = malloc(sizeof(float) * in_n[i] * NS);
    for (int64_t j = 0; j < in_n[i] * NS; j++) {
      x = x * 1664525u + 1013904223u;
      samples[i][j] = (float)((x >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
  }
  for (int o = 0; o < info->num_outputs; o++) {
    out_n[o] = numel(&info->outputs[o]);
    refs[o] = malloc(sizeof(float) * out_n[o] * NS);
  }
  for (int s = 0; s < NS; s++) { /* the reference: each sample alone */
    const float *in[MAXIO];
    float *out[MAXIO];
    for (int i = 0; i < info->num_inputs; i++)
      in[i] = samples[i] + s * in_n[i];
    for (int o = 0; o < info->num_outputs; o++)
      out[o] = refs[o] + s * out_n[o];
    if (cnn_run(model, 1, in, out) != CNN_OK) {
      fprintf(stderr, "shared_model: reference run: %s\n", cnn_last_error(model));
      return 1;
    }
  }
  pthread_t t[64];
  Worker w[64];
  for (int k = 0; k < nthreads; k++) {
    w[k] = (Worker){.id = k};
    if (pthread_create(&t[k], NULL, worker, &w[k]) != 0) {
      fprintf(stderr, "shared_model: cannot start thread %d\n", k);
      return 1;
    }
  }
  long bad = 0, done = 0;
  for (int k = 0; k < nthreads; k++) {
    pthread_join(t[k], NULL);
    bad += w[k].bad;
    done += w[k].done;
  }
  printf("shared_model: %d threads, %ld calls on one model '%s', %ld differ from the "
         "samples run alone\n",
         nthreads, done, info->name, bad);
  cnn_destroy(model);
  for (int i = 0; i < info->num_inputs; i++)
    free(samples[i]);
  for (int o = 0; o < info->num_outputs; o++)
    free(refs[o]);
  return bad ? 1 : 0;
}
