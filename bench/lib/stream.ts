/**
 * This machine's stream-read bandwidth, measured the way our kernels read memory: a sum over a large
 * Float32Array (larger than the caches), in JavaScript, best of several passes; on one thread and on
 * all threads (each summing a contiguous share of one SharedArrayBuffer, started together).
 *
 * The sum keeps 8 independent accumulators: with one, the f64 add latency, not memory, bounds it
 * (measured on this VM: ≈ 4.7 GB/s with one accumulator, ≈ 6.4 with 4, ≈ 8.2 with 8, ≈ 8.1 with 8
 * unrolled twice). It is the fastest plain-JS Float32Array read we found, so "fraction of stream
 * bandwidth" compares the matvec with what JavaScript itself can pull from memory. On one core this
 * read is itself partly bound by V8's per-element work (bounds check, f32→f64 conversion), not only
 * by DRAM: two threads read ≈ 1.8× as fast.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

/** The kernel, as source: the main thread and the workers run the very same text. */
const SUM_SRC = `function sum(a, i0, i1) {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  let i = i0;
  for (; i + 8 <= i1; i += 8) {
    s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3];
    s4 += a[i + 4]; s5 += a[i + 5]; s6 += a[i + 6]; s7 += a[i + 7];
  }
  for (; i < i1; i++) s0 += a[i];
  return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}`;
const sum = new Function(`${SUM_SRC}; return sum;`)() as (a: Float32Array, i0: number, i1: number) => number;

const WORKER_SRC = `
const { workerData } = require('node:worker_threads');
${SUM_SRC}
const a = new Float32Array(workerData.buf);
const c = new Int32Array(workerData.ctrl);
const [i0, i1] = workerData.range;
let seen = 0;
for (;;) {
  Atomics.wait(c, 0, seen);
  seen = Atomics.load(c, 0);
  if (c[2] === 1) break;
  c[8 + workerData.index] = sum(a, i0, i1) > 0 ? 1 : 0; // keep the result alive
  Atomics.add(c, 1, 1);
  Atomics.notify(c, 1);
}
`;

export interface StreamResult {
  bytes: number;
  passes: number;
  threads: number;
  /** GB/s (10⁹ bytes per second), best pass. */
  singleThreadGBps: number;
  allThreadsGBps: number;
  /** Median pass, for the noise. */
  singleThreadMedianGBps: number;
  allThreadsMedianGBps: number;
}

const rangeOf = (n: number, parts: number, i: number): [number, number] => {
  const per = Math.ceil(n / parts / 8) * 8;
  const a = Math.min(n, i * per);
  return [a, Math.min(n, a + per)];
};

export async function measureStream(mib: number, passes: number, threads = availableParallelism()): Promise<StreamResult> {
  const n = (mib * 2 ** 20) / 4;
  const buf = new SharedArrayBuffer(n * 4);
  const a = new Float32Array(buf);
  for (let i = 0; i < n; i++) a[i] = (i & 1023) * 1e-3; // touch every page; small normal values
  const bytes = n * 4;

  const single: number[] = [];
  sum(a, 0, n); // JIT
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    sum(a, 0, n);
    single.push(bytes / ((performance.now() - t0) / 1000) / 1e9);
  }

  const ctrl = new Int32Array(new SharedArrayBuffer(64 * 4));
  const workers: Worker[] = [];
  for (let i = 1; i < threads; i++) {
    const w = new Worker(WORKER_SRC, {
      eval: true,
      workerData: { buf, ctrl: ctrl.buffer, index: i, range: rangeOf(n, threads, i) },
      execArgv: [],
    });
    w.unref();
    workers.push(w);
  }
  await new Promise((r) => setTimeout(r, 200)); // let the workers reach Atomics.wait
  const [m0, m1] = rangeOf(n, threads, 0);
  const all: number[] = [];
  try {
    for (let p = 0; p <= passes; p++) {
      Atomics.store(ctrl, 1, 0);
      const t0 = performance.now();
      Atomics.add(ctrl, 0, 1);
      Atomics.notify(ctrl, 0);
      sum(a, m0, m1);
      for (let d = Atomics.load(ctrl, 1); d < threads - 1; d = Atomics.load(ctrl, 1)) Atomics.wait(ctrl, 1, d, 1000);
      if (p > 0) all.push(bytes / ((performance.now() - t0) / 1000) / 1e9); // pass 0 warms the workers' JIT
    }
  } finally {
    ctrl[2] = 1;
    Atomics.add(ctrl, 0, 1);
    Atomics.notify(ctrl, 0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y);
  return {
    bytes,
    passes,
    threads,
    singleThreadGBps: Math.max(...single),
    allThreadsGBps: threads === 1 ? Math.max(...single) : Math.max(...all),
    singleThreadMedianGBps: sorted(single)[Math.floor(single.length / 2)],
    allThreadsMedianGBps: threads === 1 ? sorted(single)[Math.floor(single.length / 2)] : sorted(all)[Math.floor(all.length / 2)],
  };
}
