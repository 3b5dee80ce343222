/*
 * blob.c: the packed weights of a network, laid out and written.
 *
 * The blob is a CnnrtBlobHeader (runtime/cnnrt.h: magic, data size, build
 * id) followed by every parameter a kernel reads, each 64-byte aligned.
 * be_blob_layout walks the kernel nodes in execution order and, for each,
 * its parameters in slot order, once: a parameter gets a BlobEntry (owner,
 * slot, size, offset) the first time a kernel reads it, and
 * Param.blob_offset is set to its byte offset in the data. The owner's
 * kernel decision (kernels.c, BeChoice) says how its weight is stored: in
 * the kernel's own packed order and size (impl->pack, impl->packed_numel),
 * or as PyTorch lays it out. be_blob_write writes the entries in the same
 * order, packing each weight as it goes, so the two walks cannot disagree.
 *
 * Under --precision=bf16 a conv or linear weight (bf16.c: be_param_bf16)
 * is stored as bfloat16, 2 bytes per value, rounded as it is written.
 *
 * The build id hashes what makes a blob fit a .so: the IR text, each packed
 * parameter's name, shape and offset, the precision when not fp32, and the
 * cnncc version, but not the weight values, so a blob of retrained weights
 * for the same spec loads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/cnnrt.h"
#include "backend_internal.h"

#ifndef CNNCC_VERSION
#define CNNCC_VERSION "0.0"
#endif

static int64_t align64(int64_t bytes) { return (bytes + 63) & ~(int64_t)63; }

/* The packer of slot `slot` of a node with kernel `impl`, or NULL. */
static const KernelImpl *packer_of(const BeChoice *ch, int slot) {
  return slot == P_WEIGHT && ch->impl && ch->impl->pack ? ch->impl : NULL;
}

bool be_blob_layout(const BeConfig *cf, const Graph *g, const BeChoice *choice, BlobLayout *bl,
                    char *err, size_t errlen) {
  memset(bl, 0, sizeof *bl);
  for (int i = 0; i < g->params.len; i++)
    GRAPH_PARAM(g, i)->blob_offset = -1;
  for (int i = 0; i < g->nodes.len; i++) /* also parameters a pass made */
    for (int k = 0; k < GRAPH_NODE(g, i)->nparams; k++)
      if (GRAPH_NODE(g, i)->params[k])
        GRAPH_NODE(g, i)->params[k]->blob_offset = -1;
  int cap = 0;
  for (int i = 0; i < g->nodes.len; i++) {
    const Node *n = GRAPH_NODE(g, i);
    const BeChoice *ch = &choice[n->id];
    if (!ch->impl)
      continue; /* no kernel: reads no parameter */
    for (int k = 0; k < n->nparams; k++) {
      Param *p = n->params[k];
      if (!p)
        continue;
      if (p->blob_offset >= 0) {
        /* Read by a second kernel: fine as long as neither packs it. */
        for (int e = 0; e < bl->n; e++)
          if (bl->e[e].p == p)
            CHECK(!bl->e[e].packer && !packer_of(ch, k) && bl->e[e].bf16 == be_param_bf16(cf, n, k),
                  "parameter '%s' is read by '%s' and '%s' in different orders", p->name,
                  bl->e[e].owner->name, n->name);
        continue;
      }
      if (!p->data) {
        snprintf(err, errlen, "parameter '%s' has no data (weights not bound)", p->name);
        return false;
      }
      if (bl->n == cap) {
        cap = cap ? 2 * cap : 64;
        bl->e = xrealloc(bl->e, sizeof *bl->e * (size_t)cap);
      }
      BlobEntry *e = &bl->e[bl->n++];
      e->p = p;
      e->owner = n;
      e->packer = packer_of(ch, k);
      e->numel =
          e->packer && e->packer->packed_numel ? e->packer->packed_numel(cf, n) : param_numel(p);
      e->bf16 = be_param_bf16(cf, n, k);
      e->offset = bl->data_bytes;
      p->blob_offset = e->offset;
      bl->data_bytes += align64(e->numel * (e->bf16 ? 2 : 4));
    }
  }
  return true;
}

void be_blob_free(BlobLayout *bl) {
  free(bl->e);
  memset(bl, 0, sizeof *bl);
}

/* fwrite in pieces of at most 8 MB, reporting "packing weights": pos of
   total blob bytes were written before this buffer. */
static bool write_reporting(FILE *f, const void *buf, size_t n, int64_t pos, int64_t total,
                            const ProgressHook *prog) {
  const char *s = buf;
  for (size_t k = 0; k < n;) {
    size_t m = n - k < ((size_t)8 << 20) ? n - k : (size_t)8 << 20;
    if (fwrite(s + k, 1, m, f) != m)
      return false;
    k += m;
    progress_report(prog, "packing weights", (double)(pos + (int64_t)k), (double)total, "B");
  }
  return true;
}

bool be_blob_write(const BeConfig *cf, const BlobLayout *bl, const char *path, const char *build_id,
                   const ProgressHook *prog, char *err, size_t errlen) {
  progress_report(prog, "packing weights", 0, (double)bl->data_bytes, "B");
  FILE *f = fopen(path, "wb");
  if (!f) {
    snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  CnnrtBlobHeader h;
  memset(&h, 0, sizeof h);
  memcpy(h.magic, CNNRT_BLOB_MAGIC, 8);
  h.data_bytes = (uint64_t)bl->data_bytes;
  snprintf(h.build_id, sizeof h.build_id, "%s", build_id);
  bool ok = fwrite(&h, sizeof h, 1, f) == 1;
  static const unsigned char zeros[64];
  for (int i = 0; i < bl->n && ok; i++) {
    const BlobEntry *e = &bl->e[i];
    CHECK(e->offset == (int64_t)ftell(f) - (int64_t)sizeof h, "blob entry '%s' out of place",
          e->p->name);
    float *packed = e->packer ? e->packer->pack(cf, e->owner) : NULL;
    const float *src = packed ? packed : e->p->data;
    size_t bytes = (size_t)e->numel * (e->bf16 ? 2 : 4);
    uint16_t *half = NULL;
    if (e->bf16) {
      half = xmalloc(bytes ? bytes : 1);
      be_bf16_round_array(src, half, e->numel);
    }
    ok =
        write_reporting(f, half ? (const void *)half : src, bytes, e->offset, bl->data_bytes, prog);
    free(half);
    free(packed);
    size_t pad = (size_t)(align64((int64_t)bytes) - (int64_t)bytes);
    ok = ok && fwrite(zeros, 1, pad, f) == pad;
  }
  if (fclose(f) != 0 || !ok) {
    snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
    return false;
  }
  progress_report(prog, "packing weights", (double)bl->data_bytes, (double)bl->data_bytes, "B");
  return true;
}

/* ---------------------------------------------------------------- build id */

typedef struct {
  uint64_t a, b;
} Hash128;

static void hash_bytes(Hash128 *h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) {
    h->a = (h->a ^ s[i]) * 0x100000001b3ull;
    h->b = (h->b ^ (unsigned char)(s[i] + 0x9d)) * 0x100000001b3ull;
  }
}

static void hash_str(Hash128 *h, const char *s) { hash_bytes(h, s, strlen(s) + 1); }

void be_build_id(const BeConfig *cf, const Graph *g, char out[CNNRT_BUILD_ID_LEN + 1]) {
  Hash128 h = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  ir_print(g, f);
  fclose(f);
  hash_bytes(&h, text, len);
  free(text);
  for (int i = 0; i < g->params.len; i++) {
    Param *p = GRAPH_PARAM(g, i);
    if (p->blob_offset < 0)
      continue;
    char buf[128];
    hash_str(&h, p->name);
    snprintf(buf, sizeof buf, "%d:%lld,%lld,%lld,%lld@%lld", p->rank, (long long)p->dims[0],
             (long long)p->dims[1], (long long)p->dims[2], (long long)p->dims[3],
             (long long)p->blob_offset);
    hash_str(&h, buf);
  }
  if (cf->precision == PRECISION_BF16)
    hash_str(&h, "precision=bf16");
  if (cf->precision == PRECISION_INT8) { /* the input scales are in the code */
    hash_str(&h, "precision=int8");
    for (int i = 0; i < g->nodes.len; i++) {
      const Node *n = GRAPH_NODE(g, i);
      char buf[96];
      snprintf(buf, sizeof buf, "%s:%d:%a:%d", n->name, n->quant, (double)n->qscale, n->qzero);
      hash_str(&h, buf);
    }
  }
  hash_str(&h, "cnncc " CNNCC_VERSION " blob v1");
  snprintf(out, CNNRT_BUILD_ID_LEN + 1, "%016llx%016llx", (unsigned long long)h.a,
           (unsigned long long)h.b);
}
