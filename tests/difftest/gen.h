/*
 * gen.h: random valid networks, for differential testing against PyTorch;
 * the map of tests/difftest/.
 *
 *   tests/difftest/gen.c        the generator: a random network from a
 *                               source of choices, as a spec and as its
 *                               "twin" (the same graph, flattened, as JSON)
 *   tests/difftest/gen_main.c   cnn_gen: the generator from a seed, to files
 *   tests/difftest/run_so.c     cnn_difftest_run: runs a compiled .so over a
 *                               matrix of threads, batches and buffer
 *                               alignments, checks that the bits agree
 *   tests/difftest/difftest.py  the campaign: generate, build the PyTorch
 *                               twin (twin.py), compile in every
 *                               configuration, run, compare, record
 *   tests/difftest/twin.py      the twin JSON as a PyTorch module (float64)
 *   tests/difftest/reduce.py    shrinks a failing network to a minimal spec
 *   tests/difftest/handmade.py  regressions written by hand (the modern
 *                               networks' block shapes with non-finite
 *                               inputs, for pad-channels), as reduce.py
 *                               writes them
 *   tests/difftest/regressions/ the minimal specs of the bugs found, with
 *                               their weights, inputs and PyTorch's outputs
 *   tests/fuzz/fuzz_codegen.c   the generator driven by libFuzzer's bytes,
 *                               through the passes and LLVM code generation
 *
 * A network uses every op of the spec language (docs/spec.md), in a random
 * DAG: branches, merges, skip connections, tensors read by many layers,
 * several graph inputs and outputs (outputs that are also read by other
 * layers), image and vector tensors mixed, blocks instantiated with repeat,
 * odd channel counts and tiny odd planes, strides larger than the kernel,
 * dilation, asymmetric padding, ceil_mode, count_include_pad, groups.
 * Every network it makes is valid: cnncc must compile it in every
 * configuration and compute what PyTorch computes. The twin lists every
 * layer by its full name (block instances expanded), with the attributes
 * exactly as the spec gives them (the twin applies docs/spec.md's defaults
 * itself), its inputs by full name, and its parameters with their names
 * and shapes.
 */
#ifndef CNNCC_DIFFTEST_GEN_H
#define CNNCC_DIFFTEST_GEN_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Where the choices come from: a seed (splitmix64), or bytes (a fuzzer's
   input; past their end every choice is 0, and the generator always
   finishes). */
typedef struct {
  uint64_t state;
  const uint8_t *bytes;
  size_t len, pos;
} GenRng;

void gen_rng_seed(GenRng *r, uint64_t seed);
void gen_rng_bytes(GenRng *r, const uint8_t *bytes, size_t len);
/* A choice in [0, n) (0 when n <= 1). */
uint32_t gen_below(GenRng *r, uint32_t n);

typedef struct {
  int max_layers;   /* top-level layers (a block instance counts as one) */
  int max_channels; /* of a conv or linear output, before concats */
  int max_hw;       /* of a graph input */
  int blocks;       /* 0: no blocks, repeat or groups */
  const char *name; /* the network's name */
  /* An SE gate's mul often between a conv of a blocked width and a 1x1
     projection (MBConv, fuse-gate's pattern). Off in the fuzzer unless its
     byte 0 asks (bit 4): the extra choices would shift every later byte of
     the inputs found before it. */
  bool se_blocks;
} GenOptions;

/* The defaults of the campaign (gen_main.c) and of the fuzzer (smaller). */
void gen_options_default(GenOptions *o);
void gen_options_small(GenOptions *o);

typedef struct {
  char *spec; /* the YAML text (malloc'd) */
  char *twin; /* the JSON twin (malloc'd) */
  int layers; /* nodes of the twin */
} GenNet;

/* A random valid network. Free with gen_free. */
void gen_network(GenRng *r, const GenOptions *o, GenNet *out);
void gen_free(GenNet *n);

#endif
