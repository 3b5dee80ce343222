/*
 * test_memory_plan.c: the memory plan of every zoo network (examples/ *.yaml)
 * after all passes (-O3, ir_verify after each as in the driver), checked two ways:
 *   - the planned arena is within 5% of the lower bound (the most bytes
 *     live at one step of the chosen order);
 *   - no two values that are live at the same time share a byte, with
 *     liveness recomputed here from the graph (a value lives from the step
 *     that writes it to its last reader, graph outputs to the end), not
 *     taken from the planner. Two values may share bytes only when one's
 *     storage is an alias of the other's (a view, a concat slice, an
 *     in-place op).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/passes.h"

typedef struct {
  char *path;
} Net;

static void free_nets(struct criterion_test_params *p) {
  Net *n = p->params;
  for (size_t i = 0; i < p->length; i++)
    cr_free(n[i].path);
  cr_free(n);
}

ParameterizedTestParameters(memory_plan, every_zoo_network) {
  Net *nets = cr_malloc(sizeof(Net) * 128);
  size_t n = 0;
  DIR *d = opendir(CNNCC_SOURCE_DIR "/examples");
  struct dirent *e;
  while (d && (e = readdir(d)) && n < 128) {
    size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
      continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/%s", CNNCC_SOURCE_DIR, e->d_name);
    nets[n].path = cr_malloc(strlen(path) + 1);
    strcpy(nets[n].path, path);
    n++;
  }
  if (d)
    closedir(d);
  return cr_make_param_array(Net, nets, n, free_nets);
}

/* Byte address of n's storage in the arena, or -1 if not in the arena. */
static int64_t addr(const Node *n) {
  int64_t off = 0;
  while (n->mem.kind == MEM_ALIAS) {
    off += n->mem.offset;
    n = n->mem.alias_of;
  }
  return n->mem.kind == MEM_ARENA ? n->mem.offset + off : -1;
}

static bool on_alias_chain(const Node *a, const Node *b) {
  for (const Node *x = a; x; x = x->mem.kind == MEM_ALIAS ? x->mem.alias_of : NULL)
    if (x == b)
      return true;
  return false;
}

static int write_step(const Node *x) {
  if (x->op == OP_SLICE && x->in[0]->split)
    return x->in[0]->order;
  return x->order;
}

ParameterizedTest(Net *net, memory_plan, every_zoo_network) {
  FILE *devnull = fopen("/dev/null", "w");
  Diag *d = diag_new(devnull, false);
  Graph *g = spec_load_file(net->path, d);
  cr_assert(g, "%s does not load", net->path);
  weights_init_deterministic(g, 0);
  PassOptions po = {.opt_level = 3, .verify = true}; /* as the driver: a broken pass fails here */
  passes_run(g, &po);

  cr_assert_leq((double)g->arena_bytes, 1.05 * (double)g->lower_bound_bytes,
                "%s: planned %lld bytes > 1.05 x lower bound %lld", net->path,
                (long long)g->arena_bytes, (long long)g->lower_bound_bytes);
  cr_assert_leq(g->lower_bound_bytes, g->naive_bytes);

  int n = g->nodes.len;
  int *last = malloc(sizeof(int) * (size_t)n);
  for (int i = 0; i < n; i++)
    last[i] = write_step(GRAPH_NODE(g, i));
  for (int j = 0; j < n; j++) {
    Node *y = GRAPH_NODE(g, j);
    if (y->op == OP_SLICE && y->in[0]->split)
      continue; /* written by its producer, not a read of it */
    for (int k = 0; k < y->nin; k++)
      if (last[y->in[k]->order] < j)
        last[y->in[k]->order] = j;
  }
  for (int q = 0; q < g->noutputs; q++)
    last[g->outputs[q].node->order] = n;

  int checked = 0;
  for (int i = 0; i < n; i++) {
    Node *x = GRAPH_NODE(g, i);
    int64_t ax = addr(x);
    if (ax < 0 || x->split)
      continue;
    int64_t sx = shape_numel(&x->shape) * 4;
    cr_assert_leq(ax + sx, g->arena_bytes, "%s: '%s' ends past the arena", net->path, x->name);
    for (int j = i + 1; j < n; j++) {
      Node *y = GRAPH_NODE(g, j);
      int64_t ay = addr(y);
      if (ay < 0 || y->split || on_alias_chain(x, y) || on_alias_chain(y, x))
        continue;
      int wx = write_step(x), wy = write_step(y);
      /* Inclusive ranges: at the step that reads x and writes y, both are
         in use (only an in-place op, on x's alias chain, may share). */
      bool live_together = wx <= last[j] && wy <= last[i];
      if (!live_together)
        continue;
      int64_t sy = shape_numel(&y->shape) * 4;
      checked++;
      cr_assert(ax + sx <= ay || ay + sy <= ax,
                "%s: '%s' [%lld, +%lld) live steps %d..%d overlaps '%s' [%lld, +%lld) %d..%d",
                net->path, x->name, (long long)ax, (long long)sx, wx, last[i], y->name,
                (long long)ay, (long long)sy, wy, last[j]);
    }
  }
  cr_log_info("%s: naive %lld, planned %lld, lower bound %lld bytes; %d live pairs checked",
              g->name, (long long)g->naive_bytes, (long long)g->arena_bytes,
              (long long)g->lower_bound_bytes, checked);
  free(last);
  ir_graph_free(g);
  diag_free(d);
  fclose(devnull);
}
