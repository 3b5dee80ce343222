/*
 * cnn.h: the host ABI of every shared object cnncc emits.
 *
 * A host program dlopen()s the .so (or links it) and calls these functions.
 * The names and meanings below are fixed; CNN_ABI_VERSION changes if they do.
 * See docs/abi.md for a complete example.
 *
 * Threading: one cnn_model may be used by one thread at a time; distinct
 * models are independent. cnn_run does not allocate.
 */
#ifndef CNN_H
#define CNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNN_ABI_VERSION 1

typedef struct cnn_model cnn_model; /* opaque: weights, arena, threads */

typedef struct {
  const char *name; /* tensor name from the spec, e.g. "image" */
  int32_t rank;     /* 4 for NCHW images, 2 for [N, classes] */
  int64_t dims[8];  /* dims[0] is the batch dimension, reported as 1 */
} cnn_tensor_desc;

typedef struct {
  uint32_t abi_version; /* CNN_ABI_VERSION */
  const char *name;     /* network name from the spec */
  int32_t num_inputs, num_outputs;
  const cnn_tensor_desc *inputs, *outputs;
  uint64_t num_params;   /* as PyTorch counts parameters(): before folding;
                            BN running mean/var are buffers, not parameters */
  uint64_t macs;         /* multiply-accumulates per sample */
  uint64_t weight_bytes; /* packed weights as used at run time */
  uint64_t arena_bytes;  /* planned activation memory for one sample */
  const char *compiler;  /* e.g. "cnncc 0.1 (LLVM 19.1.7) -O2 cpu=..." */
} cnn_info;

/* Error codes returned by cnn_run and the cnn_set_* functions. */
enum {
  CNN_OK = 0,
  CNN_EINVAL = 1, /* NULL pointer, batch <= 0, bad thread count or setting */
  CNN_ENOMEM = 2, /* could not allocate (only in cnn_create or a cnn_set_* call) */
  CNN_ESTATE = 3, /* model is NULL or failed to load */
};

const cnn_info *cnn_get_info(void);

/* weights_path NULL: use the weights embedded in the .so. On failure returns
   NULL and writes a message into err (if err_len > 0). */
cnn_model *cnn_create(const char *weights_path, char *err, size_t err_len);

/* inputs[i]: batch x dims of inputs[i], float32, contiguous NCHW.
   outputs[i]: batch x dims of outputs[i]. Returns 0 or a CNN_E* code. */
int cnn_run(cnn_model *m, int64_t batch, const float *const *inputs, float *const *outputs);

int cnn_set_num_threads(cnn_model *m, int n); /* 0 = one per core */

/* mode "on" or "1": time every layer; a per-layer table goes to stderr when
   profiling stops ("off", "0" or NULL; cnn_set_num_threads with another
   count; cnn_destroy). "trace:FILE": one slice per kernel launch and thread
   into a fixed buffer, written to FILE as Chrome trace-event JSON when
   tracing stops (another mode, cnn_destroy); FILE is created here ("%p" in
   it becomes the process id). Another mode, or a FILE that cannot be
   created, is refused (CNN_EINVAL). */
int cnn_set_profile(cnn_model *m, const char *mode);

/* on 1 (the default): with T > 1 threads, a batch of at least T samples
   runs whole samples per thread; 0: every sample on all threads. */
int cnn_set_batch_parallel(cnn_model *m, int on);

/* The defaults of the cnn_set_* functions come from CNN_NUM_THREADS,
   CNN_PROFILE and CNN_BATCH_PARALLEL, read once by cnn_create. */

const char *cnn_last_error(const cnn_model *m);
void cnn_destroy(cnn_model *m);

#ifdef __cplusplus
}
#endif
#endif
