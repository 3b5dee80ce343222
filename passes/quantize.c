/*
 * quantize.c: which conv and linear layers compute in int8 under
 * --precision=int8 (docs/precision.md), and the scale and zero point of
 * their quantized input.
 *
 * contract: runs only when g->quant is set (the driver sets it for int8
 * and for its calibration compile), after the fusion and folding passes
 * and before layout (passes_run calls it there, whatever --passes says, so
 * the calibration compile and the int8 compile see the same graph: the same
 * nodes under the same names). Collect mode appends graph outputs and the
 * plan's names; apply mode sets Node.quant / qscale / qzero. Neither adds,
 * removes or reorders nodes.
 *
 * Quantizable (first step): an ungrouped conv2d (fold-1x1's merged sibling
 * convs too: the kernels store into their slices), and a linear. Each keeps fp32 tensors at
 * its boundaries: its kernel (backend/int8.c) quantizes its fp32 input to
 * u8 with the input's calibrated scale, multiplies by per-output-channel s8
 * weights into int32 (vpdpbusd), and dequantizes to fp32 before the fused
 * bias, residual add and activation. Every other node runs in fp32 as
 * before.
 *
 * Activations are asymmetric u8 per tensor: the calibrated range [lo, hi]
 * widened to hold 0, scale = (hi - lo) / 255, zero point = rint(-lo /
 * scale); 0.0 (the padding of a conv) is then exactly the zero point.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool quantizable(const Node *n) {
  if (n->dead)
    return false;
  if (n->op == OP_LINEAR)
    return true;
  return n->op == OP_CONV2D && n->attr.groups == 1;
}

static int plan_find(const QuantPlan *p, const char *name) {
  for (int i = 0; i < p->n; i++)
    if (strcmp(p->names[i], name) == 0)
      return i;
  return -1;
}

static void plan_push(QuantPlan *p, const char *name, int output) {
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 16;
    p->names = xrealloc(p->names, sizeof *p->names * (size_t)p->cap);
    p->output = xrealloc(p->output, sizeof *p->output * (size_t)p->cap);
  }
  p->names[p->n] = name;
  p->output[p->n] = output;
  p->n++;
}

/* Collect: every quantizable node's input becomes visible to the host. */
static void collect(Graph *g, QuantPlan *p) {
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (!quantizable(n) || plan_find(p, n->in[0]->name) >= 0)
      continue;
    Node *x = n->in[0];
    if (x->op == OP_INPUT) {
      plan_push(p, x->name, -1);
      continue;
    }
    GraphIO *outs = arena_alloc(g->arena, sizeof(GraphIO) * (size_t)(g->noutputs + 1));
    memcpy(outs, g->outputs, sizeof(GraphIO) * (size_t)g->noutputs);
    outs[g->noutputs] = (GraphIO){.name = x->name, .node = x};
    g->outputs = outs;
    plan_push(p, x->name, g->noutputs++);
  }
  ir_stat(g, "quantize", "calibration: %d tensors read by conv/linear layers made visible", p->n);
}

static void apply(Graph *g, const QuantPlan *p) {
  int nq = 0, nfp = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *n = GRAPH_NODE(g, i);
    if (n->dead || (n->op != OP_CONV2D && n->op != OP_LINEAR))
      continue;
    int t = quantizable(n) ? plan_find(p, n->in[0]->name) : -1;
    if (t < 0) {
      nfp++;
      continue;
    }
    float lo = fminf(p->lo[t], 0.0f), hi = fmaxf(p->hi[t], 0.0f);
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f) || !isfinite(s))
      s = 1.0f;
    float z = rintf(-lo / s);
    n->quant = true;
    n->qscale = s;
    n->qzero = (int32_t)(z < 0 ? 0 : z > 255 ? 255 : z);
    nq++;
  }
  ir_stat(g, "quantize",
          "int8 (u8 activations, s8 per-channel weights): %d conv/linear layers; fp32: %d", nq,
          nfp);
}

void pass_quantize(Graph *g) {
  if (!g->quant)
    return;
  if (g->quant->collect)
    collect(g, g->quant);
  else
    apply(g, g->quant);
}
