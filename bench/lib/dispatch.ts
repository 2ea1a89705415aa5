/**
 * What one dispatch to the matmul workers costs, by synchronisation method: the question behind
 * cpuPool.ts's choice of Atomics over postMessage. Every method runs an EMPTY job (no work), so the
 * figure is the round trip alone; × the matmuls of one decode step it is the pool's overhead per step.
 *
 *   atomics-spin:    CpuPool with spinMicros 50 (shared counters polled up to 50 µs, then Atomics.wait).
 *   atomics-wait:    CpuPool with spinMicros 0: Atomics.wait / Atomics.notify only (futex wake-ups).
 * The pool's default ('auto') is the first on a quiet machine and the second when other processes
 * keep the cores busy; `autoSpinMicros` records which it picked for this run.
 *   message-atomics: the job goes by postMessage, the worker acknowledges through Atomics and the
 *                    caller blocks in Atomics.wait (the only postMessage design a synchronous
 *                    Backend.matmul can use).
 *   message-async:   postMessage both ways, the caller awaits the reply (what an async matmul
 *                    would do; Backend.matmul is synchronous, so this is for reference).
 */
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { CpuPool } from '../../src/kernels/cpu/pool.ts';

export interface DispatchResult {
  threads: number;
  /** µs per empty dispatch (median of batches). */
  usPerDispatch: Record<'atomics-spin' | 'atomics-wait' | 'message-atomics' | 'message-async', number>;
  /** What CpuPool's default spin ('auto') resolved to at the time, µs. */
  autoSpinMicros: number;
  /** Overhead per decode step: µs × matmuls per step. */
  matmulsPerStep: number;
  msPerStepAtomicsSpin: number;
  msPerStepMessageAtomics: number;
}

const ECHO_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const c = workerData && workerData.ctrl ? new Int32Array(workerData.ctrl) : undefined;
parentPort.on('message', (m) => {
  if (c) { Atomics.add(c, 0, 1); Atomics.notify(c, 0); } else parentPort.postMessage(m);
});
`;

async function medianUs(batches: number, perBatch: number, run: () => void | Promise<void>): Promise<number> {
  const us: number[] = [];
  for (let b = 0; b <= batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < perBatch; i++) await run();
    if (b > 0) us.push(((performance.now() - t0) * 1000) / perBatch); // batch 0 warms up
  }
  us.sort((a, b) => a - b);
  return us[Math.floor(us.length / 2)];
}

export async function measureDispatch(threads: number, matmulsPerStep: number, perBatch = 2000): Promise<DispatchResult> {
  const t = Math.max(2, threads);
  const res = {} as DispatchResult['usPerDispatch'];

  for (const [name, spinMicros] of [
    ['atomics-spin', 50],
    ['atomics-wait', 0],
  ] as const) {
    const pool = new CpuPool({ threads: t, spinMicros });
    try {
      pool.noop(); // waits for the workers to boot
      res[name] = await medianUs(5, perBatch, () => pool.noop());
    } finally {
      pool.destroy();
    }
  }

  // postMessage to one worker per extra thread, acknowledged through Atomics (synchronous caller).
  {
    const ctrl = new Int32Array(new SharedArrayBuffer(16));
    const workers = Array.from(
      { length: t - 1 },
      () => new Worker(ECHO_SRC, { eval: true, workerData: { ctrl: ctrl.buffer }, execArgv: [] }),
    );
    try {
      await Promise.all(workers.map((w) => once(w, 'online')));
      await new Promise((r) => setTimeout(r, 50));
      let expected = 0;
      res['message-atomics'] = await medianUs(5, perBatch / 4, () => {
        expected += workers.length;
        for (const w of workers) w.postMessage(0);
        for (let d = Atomics.load(ctrl, 0); d < expected; d = Atomics.load(ctrl, 0)) Atomics.wait(ctrl, 0, d, 1000);
      });
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }

  // postMessage both ways, awaited (asynchronous caller).
  {
    const workers = Array.from({ length: t - 1 }, () => new Worker(ECHO_SRC, { eval: true, execArgv: [] }));
    try {
      await Promise.all(workers.map((w) => once(w, 'online')));
      res['message-async'] = await medianUs(5, perBatch / 4, async () => {
        await Promise.all(
          workers.map((w) => {
            const p = once(w, 'message');
            w.postMessage(0);
            return p;
          }),
        );
      });
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
  }

  const probe = new CpuPool({ threads: t });
  const autoSpinMicros = probe.spin;
  probe.destroy();
  return {
    threads: t,
    usPerDispatch: res,
    autoSpinMicros,
    matmulsPerStep,
    msPerStepAtomicsSpin: (res['atomics-spin'] * matmulsPerStep) / 1000,
    msPerStepMessageAtomics: (res['message-atomics'] * matmulsPerStep) / 1000,
  };
}
