#!/usr/bin/env node
/*
 * ort_bench.js: ONNX Runtime engine of the benchmark (npm onnxruntime-node, CPU).
 *
 *   node bench/ort_bench.js MODEL.onnx INPUT.bin [--threads N] [--runs N]
 *        [--warmup N] [--batch N] [--output FILE] [--serve]
 *
 * onnxruntime-node is loaded from $BENCH_ORT_DIR (default bench/.ort, where
 * `bench/run.sh --install-ort` puts it). The session: intraOpNumThreads N,
 * interOpNumThreads 1, sequential execution, graphOptimizationLevel 'all'.
 * INPUT.bin is the raw float32 batch-1 input; --batch N (default 1) runs N
 * copies of it per call (the model needs a dynamic batch axis) and reports
 * times per image, writing the first image's output. --warmup untimed runs (default
 * 3), then bench_host.c's protocol: "BENCH result {...}" without --serve, or
 * "BENCH ready {...}" and answers "run K" / "quit" lines on stdin with
 * "BENCH times t1 ... tK" (ms, process.hrtime around each session.run).
 */
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

function usage() {
  process.stderr.write('usage: ort_bench.js MODEL.onnx INPUT.bin [--threads N] [--runs N] ' +
                       '[--warmup N] [--batch N] [--output FILE] [--serve]\n');
  process.exit(1);
}

function parseArgs(argv) {
  const a = {threads: 1, runs: 20, warmup: 3, batch: 1, output: null, serve: false, pos: []};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--threads' && v !== undefined) a.threads = parseInt(argv[++i], 10);
    else if (k === '--runs' && v !== undefined) a.runs = parseInt(argv[++i], 10);
    else if (k === '--warmup' && v !== undefined) a.warmup = parseInt(argv[++i], 10);
    else if (k === '--batch' && v !== undefined) a.batch = parseInt(argv[++i], 10);
    else if (k === '--output' && v !== undefined) a.output = argv[++i];
    else if (k === '--serve') a.serve = true;
    else if (!k.startsWith('-')) a.pos.push(k);
    else usage();
  }
  if (a.pos.length !== 2 || !(a.runs >= 1) || !(a.warmup >= 1) || !(a.threads >= 1) ||
      !(a.batch >= 1))
    usage();
  return a;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ortDir = process.env.BENCH_ORT_DIR || path.join(__dirname, '.ort');
  const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.pos[0], {
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inName = session.inputNames[0], outName = session.outputNames[0];
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const buf = fs.readFileSync(args.pos[1]);
  const one = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  let dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' ? d : 1)) : null;
  if (!dims || dims.reduce((p, d) => p * d, 1) !== one.length)
    throw new Error(`cannot infer the input shape of ${args.pos[0]} for ${one.length} floats`);
  if (args.batch > 1 && typeof meta.shape[0] === 'number')
    throw new Error(`${args.pos[0]} has a fixed batch of ${meta.shape[0]}; --batch needs a dynamic one`);
  dims[0] = args.batch;
  const data = new Float32Array(one.length * args.batch);
  for (let b = 0; b < args.batch; b++) data.set(one, b * one.length);
  const feeds = {[inName]: new ort.Tensor('float32', data, dims)};
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  async function timed(n) {
    const ms = [];
    let out = null;
    for (let i = 0; i < n; i++) {
      const s = process.hrtime.bigint();
      out = await session.run(feeds);
      ms.push(Number(process.hrtime.bigint() - s) / 1e6 / args.batch);
    }
    return [out, ms];
  }

  let [out, ms] = await timed(args.warmup);
  if (args.output) {
    const y = out[outName].data;
    const first = y.byteLength / args.batch;
    fs.writeFileSync(args.output, Buffer.from(y.buffer, y.byteOffset, first));
  }
  const versions = ort.env && ort.env.versions ? ort.env.versions : {};
  const info = {
    engine: 'ort', model: path.basename(args.pos[0]),
    compiler: `onnxruntime-node ${versions.node || '?'} (onnxruntime ${versions.common || '?'})`,
    threads: args.threads, batch: args.batch, load_ms: loadMs, first_run_ms: ms[0], warmup: args.warmup,
  };
  if (!args.serve) {
    [out, ms] = await timed(args.runs);
    const sorted = [...ms].sort((x, y) => x - y);
    Object.assign(info, {runs: args.runs, times_ms: ms,
                         median_ms: sorted[Math.floor(ms.length / 2)], min_ms: sorted[0]});
  }
  info.max_rss_kb = process.resourceUsage().maxRSS;
  process.stdout.write((args.serve ? 'BENCH ready ' : 'BENCH result ') + JSON.stringify(info) + '\n');
  if (!args.serve) return;

  const rl = readline.createInterface({input: process.stdin, terminal: false});
  for await (const line of rl) {
    const w = line.trim().split(/\s+/);
    if (w[0] === '' || w[0] === 'quit') break;
    const k = parseInt(w[1], 10);
    if (w[0] !== 'run' || !(k >= 1)) throw new Error(`bad command: ${line}`);
    [out, ms] = await timed(k);
    process.stdout.write('BENCH times ' + ms.map((t) => t.toFixed(4)).join(' ') + '\n');
  }
  rl.close();
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`ort_bench: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
