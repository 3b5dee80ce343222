/*
 * report.c: what the driver prints itself: the --summary table, the
 * --stats lines, and the graph as IR text or Graphviz (--emit=ir, dot).
 */
#include <errno.h>
#include <string.h>

#include "driver.h"

/* Kernel launches per sample: every live node but inputs, views, elided
   concats and the slices of split convs (written by their producer). */
int report_count_kernels(const Graph *g, int *convs) {
  int k = 0;
  *convs = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead || n->op == OP_INPUT || (ir_ops[n->op].flags & OPF_VIEW) || n->elided)
      continue;
    k++;
    *convs += n->op == OP_CONV2D;
  }
  return k;
}

static void human_bytes(int64_t b, char *buf, size_t n) {
  if (b >= 10 * 1024 * 1024)
    snprintf(buf, n, "%.1f MB", (double)b / (1024.0 * 1024.0));
  else if (b >= 10 * 1024)
    snprintf(buf, n, "%.1f KB", (double)b / 1024.0);
  else
    snprintf(buf, n, "%lld B", (long long)b);
}

void report_summary(const Graph *g, FILE *out) {
  char shp[64], bytes[32];
  fprintf(out, "%-36s %-18s %-16s %14s %16s %12s\n", "layer", "op", "output", "params", "MACs",
          "activations");
  uint64_t tp = 0, tm = 0;
  int64_t ta = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    if (n->dead)
      continue;
    uint64_t p = 0;
    for (int k = 0; k < n->nparams; k++)
      if (n->params[k] && n->params[k]->trainable)
        p += (uint64_t)param_numel(n->params[k]);
    uint64_t m = ir_node_macs(n);
    int64_t a = shape_numel(&n->shape) * 4;
    tp += p;
    tm += m;
    ta += a;
    human_bytes(a, bytes, sizeof bytes);
    fprintf(out, "%-36s %-18s %-16s %14llu %16llu %12s\n", n->name, ir_ops[n->op].name,
            shape_str(&n->shape, shp, sizeof shp), (unsigned long long)p, (unsigned long long)m,
            bytes);
  }
  human_bytes(ta, bytes, sizeof bytes);
  fprintf(out, "%-36s %-18s %-16s %14llu %16llu %12s\n", "total", "", "", (unsigned long long)tp,
          (unsigned long long)tm, bytes);
  fprintf(out, "parameters: %llu (%.2f M)   MACs: %llu (%.3f G)   activations: %s per sample\n",
          (unsigned long long)tp, (double)tp / 1e6, (unsigned long long)tm, (double)tm / 1e9,
          bytes);
}

void report_stats(const Graph *g, int kernels0, int convs0, FILE *out) {
  for (int i = 0; i < g->stats.len; i++) {
    PassStat *s = g->stats.items[i];
    fprintf(out, "%s: %s\n", s->pass, s->text);
  }
  int convs1, kernels1 = report_count_kernels(g, &convs1);
  fprintf(out, "kernels: %d launched per sample (%d convs); as written: %d (%d convs)\n", kernels1,
          convs1, kernels0, convs0);
}

void report_stats_since(const Graph *g, int from, FILE *out) {
  for (int i = from; i < g->stats.len; i++) {
    PassStat *s = g->stats.items[i];
    fprintf(out, "%s: %s\n", s->pass, s->text);
  }
}

bool report_write_graph(const Graph *g, bool dot, const char *path, Diag *d) {
  FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
  if (!f) {
    diag_plain(d, DIAG_ERROR, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  if (dot)
    ir_print_dot(g, f);
  else
    ir_print(g, f);
  if (f != stdout && fclose(f) != 0) {
    diag_plain(d, DIAG_ERROR, "cannot write '%s': %s", path, strerror(errno));
    remove(path);
    return false;
  }
  return true;
}
