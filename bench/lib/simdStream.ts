/**
 * The SIMD stream-read bandwidth: the reference the WebAssembly tier's decode matvec is held to.
 * The module's own `streamSum` (src/kernels/cpu/wasm/assembly/stream.ts: four v128 accumulators)
 * reads a buffer larger than the caches, inside a WebAssembly memory like the weights; on one thread
 * and on `threads` threads (workers instantiate the same module on the same shared memory, each
 * summing a contiguous share, started together). Best of `passes`; GB/s = 10⁹ bytes per second.
 *
 * It is what C reads on these cores (the probe: 10.3–11.4 GB/s, the JavaScript sum ≈ 8):
 * no per-element work but the load and one vector add per 16 bytes.
 */
import { Worker } from 'node:worker_threads';
import { Arena } from '../../src/kernels/cpu/wasm/arena.ts';
import { kernelModule } from '../../src/kernels/cpu/wasm/module.ts';
import type { StreamResult } from './stream.ts';

const WORKER_SRC = `
const { workerData } = require('node:worker_threads');
const { module, memory, ctrl: ctrlBuf, range } = workerData;
const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
const c = new Int32Array(ctrlBuf);
let seen = 0;
for (;;) {
  Atomics.wait(c, 0, seen);
  seen = Atomics.load(c, 0);
  if (c[2] === 1) break;
  c[8 + workerData.index] = k.streamSum(range[0], range[1] - range[0]) > 0 ? 1 : 0; // keep the result alive
  Atomics.add(c, 1, 1);
  Atomics.notify(c, 1);
}
`;

/** Byte range of share i of `bytes` bytes at p, in whole 64-byte steps. */
const shareOf = (p: number, bytes: number, parts: number, i: number): [number, number] => {
  const per = Math.ceil(bytes / parts / 64) * 64;
  const a = Math.min(bytes, i * per);
  return [p + a, p + Math.min(bytes, a + per)];
};

export async function measureSimdStream(mib: number, passes: number, threads: number): Promise<StreamResult> {
  const bytes = mib * 2 ** 20;
  const module = kernelModule();
  const arena = new Arena(0, bytes + 2 ** 20, module);
  const p = arena.alloc(bytes)!;
  const a = arena.f32(p, bytes / 4);
  for (let i = 0; i < a.length; i++) a[i] = (i & 1023) * 1e-3; // touch every page
  const k = arena.kernels;

  const single: number[] = [];
  k.streamSum(p, bytes);
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now();
    k.streamSum(p, bytes);
    single.push(bytes / ((performance.now() - t0) / 1000) / 1e9);
  }

  const ctrl = new Int32Array(new SharedArrayBuffer(64 * 4));
  const workers: Worker[] = [];
  for (let i = 1; i < threads; i++) {
    const w = new Worker(WORKER_SRC, {
      eval: true,
      workerData: { module, memory: arena.memory, ctrl: ctrl.buffer, index: i, range: shareOf(p, bytes, threads, i) },
      execArgv: [],
    });
    w.unref();
    workers.push(w);
  }
  await new Promise((r) => setTimeout(r, 200)); // let the workers reach Atomics.wait
  const [m0, m1] = shareOf(p, bytes, threads, 0);
  const all: number[] = [];
  try {
    for (let i = 0; i <= passes; i++) {
      Atomics.store(ctrl, 1, 0);
      const t0 = performance.now();
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      k.streamSum(m0, m1 - m0);
      for (let d = Atomics.load(ctrl, 1); d < threads - 1; d = Atomics.load(ctrl, 1)) Atomics.wait(ctrl, 1, d, 1000);
      if (i > 0) all.push(bytes / ((performance.now() - t0) / 1000) / 1e9); // pass 0 warms the workers
    }
  } finally {
    ctrl[2] = 1;
    Atomics.add(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const multi = threads === 1 ? single : all;
  return {
    bytes,
    passes,
    threads,
    singleThreadGBps: Math.max(...single),
    allThreadsGBps: Math.max(...multi),
    singleThreadMedianGBps: med(single),
    allThreadsMedianGBps: med(multi),
  };
}
