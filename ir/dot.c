/*
 * dot.c: the graph as Graphviz source, for `cnncc --emit=dot`.
 *
 * One box per kernel. A node whose epilogue absorbed a residual add or an
 * activation shows them in its label ("conv2d 3x3 + add + relu"), so a fused
 * ResNet bottleneck reads as three boxes instead of eight. Views (flatten,
 * dropout) are dashed ellipses; inputs and outputs are ovals. An edge into
 * a concat is labelled with the channel range it fills, so concat slices are
 * visible; a concat whose inputs were written in place is dashed ("in
 * place"), and so are the slices of a split (merged 1x1) conv; a residual
 * edge is dashed. Nodes are grouped into clusters by the first component
 * of their name (an Inception module, a ResNet stage), and labels inside a
 * cluster drop that prefix.
 */
#include <string.h>

#include "ir.h"

/* The label of a node inside a cluster drops the cluster's prefix. */
static void label(const Node *n, size_t strip, FILE *o) {
  char buf[96];
  fprintf(o, "%s\\n%s", n->name + strip, ir_ops[n->op].name);
  if (n->op == OP_CONV2D) {
    fprintf(o, " %lldx%lld", (long long)n->attr.kernel[0], (long long)n->attr.kernel[1]);
    if (n->attr.stride[0] != 1 || n->attr.stride[1] != 1)
      fprintf(o, " s%lld", (long long)n->attr.stride[0]);
    if (n->attr.groups > 1)
      fprintf(o, " g%lld", (long long)n->attr.groups);
  }
  if (n->op == OP_CONCAT && n->elided)
    fputs(" (in place)", o);
  if (n->split)
    fputs(" (split)", o);
  if (n->epi.gate >= 0)
    fputs(" (gated input)", o);
  if (n->epi.residual >= 0)
    fputs(" + add", o);
  if (n->epi.act.kind != ACT_NONE)
    fprintf(o, " + %s", ir_act_str(&n->epi.act, buf, sizeof buf));
  fprintf(o, "\\n%s", shape_str(&n->shape, buf, sizeof buf));
}

static size_t prefix_len(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? (size_t)(dot - name) : 0;
}

static bool same_cluster(const Node *a, const Node *b, size_t pl) {
  return pl && prefix_len(b->name) == pl && strncmp(a->name, b->name, pl) == 0;
}

static void node_line(const Node *m, size_t strip, const char *indent, FILE *o) {
  fprintf(o, "%sn%d [label=\"", indent, m->id);
  label(m, strip, o);
  fputc('"', o);
  if (m->op == OP_INPUT)
    fputs(", shape=oval, fillcolor=\"#d9ead3\"", o);
  else if ((ir_ops[m->op].flags & OPF_VIEW) && !(m->op == OP_SLICE && m->in[0]->split))
    fputs(", shape=ellipse, style=dashed", o);
  else if (m->op == OP_CONCAT)
    fprintf(o, ", fillcolor=\"#fff2cc\", ordering=in%s",
            m->elided ? ", style=\"rounded,filled,dashed\"" : "");
  else if (m->op == OP_SLICE)
    fputs(", shape=box, style=\"rounded,dashed\"", o);
  else if (m->epi.residual >= 0 || m->epi.act.kind != ACT_NONE)
    fputs(", fillcolor=\"#d0e0f5\"", o);
  fputs("];\n", o);
}

void ir_print_dot(const Graph *g, FILE *o) {
  fprintf(o,
          "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", "
          "fillcolor=\"#eef3fb\", fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9];\n",
          g->name);
  fputs("  graph [fontname=\"Helvetica\", fontsize=11];\n", o);
  /* Clusters by name prefix, in order of first appearance; a prefix shared
     by one node only is no cluster. */
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead)
      continue;
    size_t pl = prefix_len(n->name);
    bool first = true;
    int members = 0;
    for (int j = 0; j < g->nodes.len; j++) {
      const Node *m = GRAPH_NODE(g, j);
      if (m->dead || !same_cluster(n, m, pl))
        continue;
      members++;
      if (j < i)
        first = false;
    }
    if (!first)
      continue;
    if (members < 2) {
      node_line(n, 0, "  ", o);
      continue;
    }
    fprintf(o,
            "  subgraph \"cluster_%.*s\" {\n    label=\"%.*s\"; style=dashed; color=\"#999999\";\n",
            (int)pl, n->name, (int)pl, n->name);
    for (int j = i; j < g->nodes.len; j++) {
      const Node *m = GRAPH_NODE(g, j);
      if (!m->dead && same_cluster(n, m, pl))
        node_line(m, pl + 1, "    ", o);
    }
    fputs("  }\n", o);
  }
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead)
      continue;
    int64_t c0 = 0;
    for (int k = 0; k < n->nin; k++) {
      fprintf(o, "  n%d -> n%d", n->in[k]->id, n->id);
      if (n->op == OP_CONCAT) {
        int64_t c1 = c0 + n->in[k]->shape.d[0];
        fprintf(o, " [label=\"ch %lld..%lld\"]", (long long)c0, (long long)c1 - 1);
        c0 = c1;
      } else if (k == n->epi.residual) {
        fputs(" [style=dashed, label=\"residual\"]", o);
      } else if (k == n->epi.gate) {
        fputs(" [style=dashed, label=\"gate\"]", o);
      }
      fputs(";\n", o);
    }
  }
  for (int i = 0; i < g->noutputs; i++) {
    fprintf(o, "  out%d [label=\"%s\", shape=oval, fillcolor=\"#f4cccc\"];\n", i,
            g->outputs[i].name);
    fprintf(o, "  n%d -> out%d;\n", g->outputs[i].node->id, i);
  }
  fputs("}\n", o);
}
