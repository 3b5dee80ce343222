/*
 * tiles.c: the small geometry the kernels share.
 *
 * Everything here is computed at compile time from a layer's constant shape
 * and emitted as a loop or a constant table, so the kernels' hot loops have
 * no bounds checks:
 *   - be_emit_row_tiles: a row of output pixels cut into register tiles, the
 *     interior tiles in a loop, the border tiles at constant positions (the
 *     direct convs of blocked.c and grouped.c);
 *   - be_interior_cols, be_kh_tables: where a sliding window lies entirely
 *     inside the input, along a row and per output row;
 *   - be_pool_col_divisors, be_adaptive_bins: the column part of the
 *     average pools' divisors and bins (NCHW and blocked kernels alike);
 *   - be_split_out: where a split conv writes an output channel (its slices);
 *   - be_zero_padded_block/_channel: pad-channels' padded output channels
 *     stored as exactly 0;
 *   - be_gate_block: a fused channel gate (passes/fuse_gate.c) applied to
 *     16 input channels as a kernel converts its input.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend_internal.h"

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

void be_split_out(BeCtx *c, KArgs *k, LLVMValueRef idx, int64_t unit, LLVMValueRef *base,
                  LLVMValueRef *local) {
  *base = k->out;
  *local = idx;
  for (int s = 0; s < k->nseg; s++) {
    int64_t first = k->seg_begin[s] / unit;
    LLVMValueRef in_seg = LLVMBuildICmp(c->b, LLVMIntSGE, idx, be_i64(c, first), "");
    LLVMValueRef l = be_addk(c, idx, -first);
    *base = s == 0 ? k->seg[0] : LLVMBuildSelect(c->b, in_seg, k->seg[s], *base, "");
    *local = s == 0 ? l : LLVMBuildSelect(c->b, in_seg, l, *local, "");
  }
}

static bool has_padding(const Node *n) {
  return n->op == OP_CONV2D && n->attr.padded_from > 0 && n->attr.padded_from < n->shape.d[0];
}

LLVMValueRef be_zero_padded_block(BeCtx *c, const Node *n, LLVMValueRef blk, LLVMValueRef v) {
  if (!has_padding(n))
    return v;
  /* lane l is real when 16 blk + l < padded_from */
  LLVMValueRef lim = be_sub(c, be_i64(c, n->attr.padded_from), be_mulk(c, blk, 16));
  lim =
      LLVMBuildTrunc(c->b, be_smax(c, be_smin(c, lim, be_i64(c, 16)), be_i64(c, 0)), c->t_i32, "");
  LLVMTypeRef vi = LLVMVectorType(c->t_i32, 16);
  LLVMValueRef lanes[16];
  for (int l = 0; l < 16; l++)
    lanes[l] = be_i32(c, l);
  LLVMValueRef splat = LLVMBuildInsertElement(c->b, LLVMGetPoison(vi), lim, be_i32(c, 0), "");
  splat = LLVMBuildShuffleVector(c->b, splat, LLVMGetPoison(vi), LLVMConstNull(vi), "");
  LLVMValueRef real = LLVMBuildICmp(c->b, LLVMIntSLT, LLVMConstVector(lanes, 16), splat, "");
  return LLVMBuildSelect(c->b, real, v, LLVMConstNull(LLVMTypeOf(v)), "pad.zero");
}

LLVMValueRef be_gate_block(BeCtx *c, const KArgs *k, LLVMValueRef cb, LLVMValueRef v) {
  if (!k->gate)
    return v;
  return be_fmul(c, v, be_vld(c, k->gate, be_mulk(c, cb, 16), 4));
}

LLVMValueRef be_zero_padded_channel(BeCtx *c, const Node *n, LLVMValueRef ch, LLVMValueRef v) {
  if (!has_padding(n))
    return v;
  LLVMValueRef real = LLVMBuildICmp(c->b, LLVMIntSLT, ch, be_i64(c, n->attr.padded_from), "");
  return LLVMBuildSelect(c->b, real, v, LLVMConstNull(LLVMTypeOf(v)), "pad.zero");
}

/* A row of W output pixels cut into tiles of up to T: pixels [owA, owB]
   have every tap inside the input, so whole tiles there run in one loop with
   a variable start (ow0c = -1); the rest are tiles at constant positions
   (ow0c = their first pixel), where the emitter drops the padded taps. */
void be_emit_row_tiles(BeCtx *c, int64_t W, int64_t T, int64_t owA, int64_t owB, BeTileFn tile,
                       void *ctx) {
  if (owB > W - 1)
    owB = W - 1;
  int64_t pos = 0;
  while (pos < W) {
    if (pos >= owA && pos + T - 1 <= owB) {
      int64_t m = (owB + 1 - pos) / T;
      if (m == 1) {
        tile(c, ctx, be_i64(c, pos), -1, (int)T);
      } else {
        BeLoop t;
        be_for(c, &t, be_i64(c, 0), be_i64(c, m), "tile");
        tile(c, ctx, be_addk(c, be_mulk(c, t.iv, T), pos), -1, (int)T);
        be_for_end(c, &t);
      }
      pos += m * T;
    } else {
      int64_t w = W - pos < T ? W - pos : T;
      tile(c, ctx, be_i64(c, pos), pos, (int)w);
      pos += w;
    }
  }
}

/* The first and last output column whose taps all fall inside the input. */
void be_interior_cols(int64_t IW, int64_t KW, int64_t sw, int64_t pl, int64_t dw, int64_t *owA,
                      int64_t *owB) {
  *owA = be_cdiv(pl, sw);
  *owB = floordiv(IW - 1 + pl - (KW - 1) * dw, sw);
}

void be_kh_tables(BeCtx *c, const char *name, int64_t IH, int64_t OH, int64_t KH, int64_t sh,
                  int64_t pt, int64_t dh, LLVMValueRef *kh0, LLVMValueRef *kh1) {
  int64_t *t = malloc(sizeof(int64_t) * 2 * (size_t)OH);
  for (int64_t oh = 0; oh < OH; oh++) {
    int64_t lo = 0, hi = 0;
    for (int64_t kh = 0; kh < KH; kh++) {
      int64_t ih = oh * sh - pt + kh * dh;
      if (ih >= 0 && ih < IH) {
        if (hi == 0)
          lo = kh;
        hi = kh + 1;
      }
    }
    t[oh] = lo;
    t[OH + oh] = hi < lo ? lo : hi;
  }
  char nm[64];
  snprintf(nm, sizeof nm, "%s.kh0", name);
  *kh0 = be_table_i64(c, nm, t, (int)OH);
  snprintf(nm, sizeof nm, "%s.kh1", name);
  *kh1 = be_table_i64(c, nm, t + OH, (int)OH);
  free(t);
}

/* Adaptive average pooling: bin i of n over a length L is
   [floor(i*L/n), ceil((i+1)*L/n)). The column bins as two constant tables
   (starts, ends), shared by the NCHW and the blocked kernel. */
void be_adaptive_bins(BeCtx *c, int64_t L, int64_t n, LLVMValueRef *starts, LLVMValueRef *ends) {
  int64_t *ws = malloc(sizeof(int64_t) * 2 * (size_t)n), *we = ws + n;
  for (int64_t i = 0; i < n; i++) {
    ws[i] = i * L / n;
    we[i] = ((i + 1) * L + n - 1) / n;
  }
  *starts = be_table_i64(c, "apool.ws", ws, (int)n);
  *ends = be_table_i64(c, "apool.we", we, (int)n);
  free(ws);
}

/* Average pooling's column divisors, as PyTorch's cpu_avg_pool computes
   them: the window [ow*sw - pl, +KW) clipped to the input plus the
   trailing padding (the count_include_pad divisor), then to the input
   (the divisor without padding). */
int64_t *be_pool_col_divisors(int64_t IW, int64_t OW, int64_t KW, int64_t sw, int64_t pl,
                              int64_t pr, bool count_include_pad) {
  int64_t *wdiv = xmalloc(sizeof(int64_t) * (size_t)OW);
  for (int64_t ow = 0; ow < OW; ow++) {
    int64_t w0 = ow * sw - pl, w1 = w0 + KW;
    if (w1 > IW + pr)
      w1 = IW + pr;
    int64_t pool = w1 - w0;
    if (w0 < 0)
      w0 = 0;
    if (w1 > IW)
      w1 = IW;
    wdiv[ow] = count_include_pad ? pool : w1 - w0;
  }
  return wdiv;
}
