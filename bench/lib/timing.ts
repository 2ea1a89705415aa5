/**
 * Timing helpers: a thin wrapper over tinybench for kernel tasks, and the few statistics we report.
 *
 * These machines are noisy (shared VMs, other jobs on the same two cores), so every figure keeps
 * its median and its best, and ratios are taken between figures measured in the same run,
 * interleaved where it matters (see decode.ts).
 */
import { Bench } from 'tinybench';

export interface Timing {
  /** Milliseconds per call: median and best of the samples. */
  medianMs: number;
  bestMs: number;
  samples: number;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

export const round = (x: number, digits = 3): number => (Number.isFinite(x) ? Number(x.toPrecision(digits)) : x);

export interface TaskOptions {
  /** Minimum timed calls. */
  iterations: number;
  /** Untimed calls first (JIT, pipeline compilation, caches). */
  warmup?: number;
  /** Keep calling until this much time has passed (ms), iterations permitting. Default 0. */
  timeMs?: number;
}

/**
 * Times `fn` with tinybench: `iterations` calls at least (after `warmup` untimed ones), more while
 * `timeMs` lasts. `fn` may be async (WebGPU tasks end with a read-back that waits for the GPU).
 */
export async function timeTask(name: string, fn: () => unknown | Promise<unknown>, opts: TaskOptions): Promise<Timing> {
  const bench = new Bench({
    name,
    iterations: opts.iterations,
    time: opts.timeMs ?? 0,
    warmup: (opts.warmup ?? 1) > 0,
    warmupIterations: opts.warmup ?? 1,
    warmupTime: 0,
    throws: true,
  });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed')
    throw new Error(`bench task ${name}: ${r.state}${'error' in r ? `: ${(r as { error: Error }).error.message}` : ''}`);
  return { medianMs: r.latency.p50, bestMs: r.latency.min, samples: r.latency.samplesCount };
}

/** Times each of the `fns` `rounds` times, interleaved (a, b, a, b, …): same noise for every one. */
export async function interleaved(fns: readonly (() => unknown | Promise<unknown>)[], rounds: number, warmup = 1): Promise<number[][]> {
  for (let w = 0; w < warmup; w++) for (const f of fns) await f();
  const samples = fns.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      await fns[i]();
      samples[i].push(performance.now() - t0);
    }
  }
  return samples;
}

export const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

export const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
