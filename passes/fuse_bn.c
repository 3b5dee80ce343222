/*
 * fuse_bn.c: BatchNorm folded into the convolution before it.
 *
 * contract: requires bound parameter data; removes foldable BATCHNORM
 * nodes, turns the others into SCALESHIFT; keeps the execution order.
 *
 * At inference a BatchNorm is an affine map per channel,
 *     y = s * x + t,  s = gamma / sqrt(var + eps),  t = beta - mean * s,
 * so after a convolution (or a linear layer) it can be folded into the
 * producer's weights and bias at compile time:
 *     W'[oc] = s[oc] * W[oc],   b'[oc] = s[oc] * b[oc] + t[oc]
 * and the BN costs nothing at run time. This is only safe when the
 * producer's output has no other reader (they would see the folded values)
 * and the producer has no epilogue yet (a fused ReLU or residual add would
 * sit between the conv and the BN). A BN that cannot be folded (the
 * pre-activation networks' BN -> ReLU -> conv, DenseNet's BN on a
 * concatenation) becomes a SCALESHIFT with s and t precomputed, which the
 * epilogue pass can then fuse a ReLU into. Arithmetic in double, as the
 * reference would do it in float64 before rounding once.
 */
#include <math.h>
#include <stdlib.h>

#include "passes.h"

void pass_fuse_bn(Graph *g) {
  int *users = malloc(sizeof(int) * (size_t)g->next_id);
  ir_count_users(g, users);
  int folded = 0, scaleshift = 0, total = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    Node *b = GRAPH_NODE(g, i);
    if (b->dead || b->op != OP_BATCHNORM)
      continue;
    total++;
    int64_t c = b->shape.d[0];
    const float *gamma = b->params[P_WEIGHT]->data, *beta = b->params[P_BIAS]->data;
    const float *mean = b->params[P_MEAN]->data, *var = b->params[P_VAR]->data;
    double *s = malloc(sizeof(double) * (size_t)c), *t = malloc(sizeof(double) * (size_t)c);
    for (int64_t k = 0; k < c; k++) {
      s[k] = (double)gamma[k] / sqrt((double)var[k] + (double)b->attr.eps);
      t[k] = (double)beta[k] - (double)mean[k] * s[k];
    }
    Node *p = b->in[0];
    bool foldable = (p->op == OP_CONV2D || p->op == OP_LINEAR) && users[p->id] == 1 &&
                    !ir_is_graph_output(g, p) && p->epi.residual < 0 &&
                    p->epi.act.kind == ACT_NONE && p->layout == b->layout &&
                    (p->op == OP_CONV2D ? p->attr.out_channels : p->attr.out_features) == c;
    if (foldable) {
      Param *w = p->params[P_WEIGHT];
      int64_t per = param_numel(w) / c;
      for (int64_t oc = 0; oc < c; oc++)
        for (int64_t k = 0; k < per; k++)
          w->data[oc * per + k] = (float)((double)w->data[oc * per + k] * s[oc]);
      if (!p->attr.has_bias) {
        Param *bias =
            ir_param_new(g, p, P_BIAS, arena_printf(g->arena, "%s.bias", p->name), 1, &c, false);
        bias->data = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)c, 64);
        p->attr.has_bias = true;
      }
      float *bias = p->params[P_BIAS]->data;
      for (int64_t oc = 0; oc < c; oc++)
        bias[oc] = (float)((double)bias[oc] * s[oc] + t[oc]);
      ir_replace_uses(g, b, p);
      b->dead = true;
      users[p->id] = users[b->id];
      folded++;
    } else {
      b->op = OP_SCALESHIFT;
      b->nparams = 0;
      for (int k = 0; k < IR_MAX_PARAMS; k++)
        b->params[k] = NULL;
      Param *ps =
          ir_param_new(g, b, P_SCALE, arena_printf(g->arena, "%s.scale", b->name), 1, &c, false);
      Param *pt =
          ir_param_new(g, b, P_SHIFT, arena_printf(g->arena, "%s.shift", b->name), 1, &c, false);
      ps->data = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)c, 64);
      pt->data = arena_alloc_aligned(g->arena, sizeof(float) * (size_t)c, 64);
      for (int64_t k = 0; k < c; k++) {
        ps->data[k] = (float)s[k];
        pt->data[k] = (float)t[k];
      }
      scaleshift++;
    }
    free(s);
    free(t);
  }
  free(users);
  if (total)
    ir_stat(g, "fuse-bn",
            "folded %d of %d batchnorms into the preceding conv/linear; "
            "%d became per-channel scale-shifts",
            folded, total, scaleshift);
}
