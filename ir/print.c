/*
 * print.c: the stable textual form of the IR.
 *
 * One line per live node, in execution order; the graph's inputs and outputs
 * head and close the listing. Only attributes that matter for the op are
 * printed, with fixed formatting, so the text is diffable and pass tests can
 * keep an expected copy beside each case:
 *
 *   graph "tiny" {
 *     %0 input "image" -> 3x32x32
 *     %1 conv2d "conv" (%0) out=16 k=3x3 s=1x1 p=1,1,1,1 d=1x1 g=1 bias [weight 16x3x3x3, bias 16]
 * -> 16x32x32 %2 relu "relu2" (%1) -> 16x32x32 output "relu2" = %2
 *   }
 *
 * Epilogues print as "+res(%k)" and the activation, "+relu", "+clamp(0,6)"
 * (ir_act_str); planned memory as "@arena:OFF",
 * "@input:I" or "@%k+OFF"; a conv's padded outputs (pad-channels,
 * Attrs.padded_from) as "zero>=C".
 */
#include <stdlib.h>

#include "ir.h"

static void print_params(const Node *n, FILE *o) {
  if (n->nparams == 0)
    return;
  fputs(" [", o);
  int first = 1;
  for (int k = 0; k < n->nparams; k++) {
    const Param *p = n->params[k];
    if (!p)
      continue;
    const char *dot = p->name;
    for (const char *s = p->name; *s; s++)
      if (*s == '.')
        dot = s + 1;
    fprintf(o, "%s%s ", first ? "" : ", ", dot);
    for (int i = 0; i < p->rank; i++)
      fprintf(o, i ? "x%lld" : "%lld", (long long)p->dims[i]);
    first = 0;
  }
  fputc(']', o);
}

static void print_attrs(const Node *n, FILE *o) {
  const Attrs *a = &n->attr;
  switch (n->op) {
  case OP_CONV2D:
    fprintf(o, " out=%lld k=%lldx%lld s=%lldx%lld p=%lld,%lld,%lld,%lld d=%lldx%lld g=%lld%s",
            (long long)a->out_channels, (long long)a->kernel[0], (long long)a->kernel[1],
            (long long)a->stride[0], (long long)a->stride[1], (long long)a->pad[0],
            (long long)a->pad[1], (long long)a->pad[2], (long long)a->pad[3],
            (long long)a->dilation[0], (long long)a->dilation[1], (long long)a->groups,
            a->has_bias ? " bias" : "");
    if (a->padded_from) /* pad-channels: outputs from here on are stored as 0 */
      fprintf(o, " zero>=%lld", (long long)a->padded_from);
    break;
  case OP_BATCHNORM:
  case OP_LAYERNORM:
    fprintf(o, " eps=%g", (double)a->eps);
    break;
  case OP_MAXPOOL:
  case OP_AVGPOOL:
    fprintf(o, " k=%lldx%lld s=%lldx%lld p=%lld,%lld,%lld,%lld", (long long)a->kernel[0],
            (long long)a->kernel[1], (long long)a->stride[0], (long long)a->stride[1],
            (long long)a->pad[0], (long long)a->pad[1], (long long)a->pad[2], (long long)a->pad[3]);
    if (n->op == OP_MAXPOOL && (a->dilation[0] != 1 || a->dilation[1] != 1))
      fprintf(o, " d=%lldx%lld", (long long)a->dilation[0], (long long)a->dilation[1]);
    if (a->ceil_mode)
      fputs(" ceil", o);
    if (n->op == OP_AVGPOOL && !a->count_include_pad)
      fputs(" exclude_pad", o);
    break;
  case OP_ADAPTIVE_AVGPOOL:
  case OP_ADAPTIVE_MAXPOOL:
    fprintf(o, " out=%lldx%lld", (long long)a->out_hw[0], (long long)a->out_hw[1]);
    break;
  case OP_LRN:
    fprintf(o, " size=%lld alpha=%g beta=%g k=%g", (long long)a->lrn_size, (double)a->alpha,
            (double)a->beta, (double)a->k);
    break;
  case OP_LINEAR:
    fprintf(o, " out=%lld%s", (long long)a->out_features, a->has_bias ? " bias" : "");
    break;
  case OP_SCALE:
    fprintf(o, " factor=%g", (double)a->scale);
    break;
  case OP_CLAMP:
    fprintf(o, " min=%g max=%g", (double)a->clamp_min, (double)a->clamp_max);
    break;
  case OP_HARDSIGMOID:
    fprintf(o, " alpha=%g beta=%g", (double)a->hs_alpha, (double)a->hs_beta);
    break;
  case OP_GELU:
    if (a->gelu_tanh)
      fputs(" approximate=tanh", o);
    break;
  case OP_CHANNEL_SHUFFLE:
    fprintf(o, " groups=%lld", (long long)a->groups);
    break;
  case OP_SLICE:
    fprintf(o, " ch=%lld..%lld", (long long)a->slice_begin,
            (long long)(a->slice_begin + n->shape.d[0] - 1));
    break;
  default:
    break;
  }
}

static void print_mem(const Node *n, FILE *o) {
  switch (n->mem.kind) {
  case MEM_NONE:
    break;
  case MEM_INPUT:
    fprintf(o, " @input:%d", n->mem.index);
    break;
  case MEM_ARENA:
    fprintf(o, " @arena:%lld", (long long)n->mem.offset);
    break;
  case MEM_ALIAS:
    fprintf(o, " @%%%d+%lld", n->mem.alias_of->id, (long long)n->mem.offset);
    break;
  }
}

void ir_print(const Graph *g, FILE *o) {
  char buf[96];
  fprintf(o, "graph \"%s\" {\n", g->name);
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead)
      continue;
    fprintf(o, "  %%%d %s \"%s\"", n->id, ir_ops[n->op].name, n->name);
    if (n->nin) {
      fputs(" (", o);
      for (int k = 0; k < n->nin; k++)
        fprintf(o, k ? ", %%%d" : "%%%d", n->in[k]->id);
      fputc(')', o);
    }
    print_attrs(n, o);
    print_params(n, o);
    if (n->epi.gate >= 0)
      fprintf(o, " +gate(%%%d)", n->in[n->epi.gate]->id);
    if (n->epi.residual >= 0)
      fprintf(o, " +res(%%%d)", n->in[n->epi.residual]->id);
    if (n->epi.act.kind != ACT_NONE)
      fprintf(o, " +%s", ir_act_str(&n->epi.act, buf, sizeof buf));
    if (n->split)
      fputs(" split", o);
    if (n->elided)
      fputs(" elided", o);
    if (n->layout == LAYOUT_NCHW16C)
      fputs(" layout=nchw16c", o);
    fprintf(o, " -> %s", shape_str(&n->shape, buf, sizeof buf));
    print_mem(n, o);
    fputc('\n', o);
  }
  for (int i = 0; i < g->noutputs; i++)
    fprintf(o, "  output \"%s\" = %%%d\n", g->outputs[i].name, g->outputs[i].node->id);
  fputs("}\n", o);
}

/* ir_print's text with every name emptied and the node ids numbered in
   execution order: two graphs that differ only in names print the same (a
   parameter layer's tensor, named after the layer, is emptied too). The
   names and ids are put back. */
char *ir_print_modulo_names(Graph *g) {
  int n = g->nodes.len;
  const char **names = xmalloc(sizeof(char *) * (size_t)(n + g->noutputs + 1));
  const char **pnames = xmalloc(sizeof(char *) * (size_t)(n + 1));
  int *ids = xmalloc(sizeof(int) * (size_t)(n + 1));
  for (int i = 0; i < n; i++) {
    Node *x = GRAPH_NODE(g, i);
    names[i] = x->name, ids[i] = x->id;
    x->name = "", x->id = i;
    if (x->op == OP_PARAMETER && x->nparams == 1)
      pnames[i] = x->params[0]->name, x->params[0]->name = "";
  }
  for (int i = 0; i < g->noutputs; i++)
    names[n + i] = g->outputs[i].name, g->outputs[i].name = "";
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ir_print(g, f);
  fclose(f);
  for (int i = 0; i < n; i++) {
    Node *x = GRAPH_NODE(g, i);
    x->name = names[i], x->id = ids[i];
    if (x->op == OP_PARAMETER && x->nparams == 1)
      x->params[0]->name = pnames[i];
  }
  for (int i = 0; i < g->noutputs; i++)
    g->outputs[i].name = names[n + i];
  free(names);
  free(pnames);
  free(ids);
  return text;
}
