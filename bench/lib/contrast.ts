/**
 * ROSE's decision fused (one op: contrastSoftmax) against the same work as separate passes:
 *   logsoftmax(l_pos), logsoftmax(l_rev), z = lp_pos − α·lp_rev, softmax(z), argmax(z)
 * each a loop over V writing its own array, as one would write it op by op.
 *
 * CPU: contrastSoftmaxCpu (what CpuBackend runs) against the 5 passes in TypeScript.
 * WebGPU: the backend exposes only the fused kernel (no logsoftmax/softmax/argmax ops), so the
 * separate alternative there is what a backend without the fused op would have to do: read the
 * (B, V) logits back and run the 5 CPU passes. Both sides include their read-back.
 */
import type { Backend } from '../../src/kernels/backend.ts';
import { round, timeTask } from './timing.ts';

function logSoftmax(row: Float32Array, out: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
}

function combine(a: Float32Array, b: Float32Array, alpha: number, out: Float32Array): void {
  for (let i = 0; i < a.length; i++) out[i] = a[i] - alpha * b[i];
}

function softmax(z: Float32Array, out: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i] > max) max = z[i];
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += out[i] = Math.exp(z[i] - max);
  for (let i = 0; i < z.length; i++) out[i] /= sum;
}

function argmax(z: Float32Array): number {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  return best;
}

/**
 * The decision as ONE read pass + one write pass (β = 0, temperature 1): the log-sum-exps are
 * constants per row, so z = (l_pos − α·l_rev) − const, and argmax / softmax of z are those of
 * y = l_pos − α·l_rev. One loop reads both rows, keeps the argmax and an online softmax sum (running
 * max, sum rescaled when it grows); a second loop writes the probabilities. Bench-only: it shows
 * what fusing buys on the CPU (contrastSoftmaxCpu, the shipped twin, makes several passes and
 * supports β, which needs max l_pos before the first z).
 */
export function fusedOnline(logits: Float32Array, V: number, alpha: number, probs: Float32Array): number {
  let max = -Infinity;
  let sum = 0;
  let best = 0;
  for (let v = 0; v < V; v++) {
    const y = logits[v] - alpha * logits[V + v];
    if (y > max) {
      sum = sum * Math.exp(max - y) + 1;
      max = y;
      best = v;
    } else sum += Math.exp(y - max);
  }
  const inv = 1 / sum;
  for (let v = 0; v < V; v++) probs[v] = Math.exp(logits[v] - alpha * logits[V + v] - max) * inv;
  return best;
}

/** The 5 separate passes over host logits (B = 2, V). Returns the argmax. */
export function separatePasses(logits: Float32Array, V: number, alpha: number, scratch: Float32Array[]): number {
  const [lp0, lp1, z, p] = scratch;
  logSoftmax(logits.subarray(0, V), lp0);
  logSoftmax(logits.subarray(V, 2 * V), lp1);
  combine(lp0, lp1, alpha, z);
  softmax(z, p);
  return argmax(z);
}

export interface ContrastFigures {
  V: number;
  /** The backend's contrastSoftmax (CPU: contrastSoftmaxCpu; WebGPU: the fused kernel + 8-byte read-back). */
  fusedMs: number;
  /** CPU only: fusedOnline above (one read pass + one write pass). */
  fusedOnlineMs: number | null;
  separateMs: number;
  /** separate ÷ fused: > 1 means the fused op is faster. */
  speedup: number;
  separateIncludesReadback: boolean;
  note: string;
}

export async function runContrast(be: Backend, V: number, iterations: number): Promise<ContrastFigures> {
  const host = new Float32Array(2 * V);
  let s = 12345;
  for (let i = 0; i < host.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) | 0;
    host[i] = ((s >>> 8) / 2 ** 24) * 8 - 4;
  }
  const logits = be.alloc([2, V]);
  be.write(logits, host);
  const probs = be.alloc([V]);
  const params = { alphas: [0.5], temperature: 1, beta: 0, uniform: 0.5 };
  const scratch = Array.from({ length: 4 }, () => new Float32Array(V));
  let sink = 0;
  const fused = await timeTask(
    'contrast fused',
    async () => {
      sink += (await be.contrastSoftmax(probs, logits, params)).argmax;
    },
    { iterations, warmup: 2 },
  );
  const gpu = be.name !== 'cpu';
  const online = gpu
    ? undefined
    : await timeTask(
        'contrast fused online',
        () => {
          sink += fusedOnline(host, V, 0.5, scratch[3]);
        },
        { iterations, warmup: 2 },
      );
  const separate = await timeTask(
    'contrast separate',
    async () => {
      const l = gpu ? await be.read(logits) : host;
      sink += separatePasses(l, V, 0.5, scratch);
    },
    { iterations, warmup: 2 },
  );
  be.free(logits);
  be.free(probs);
  void sink;
  return {
    V,
    fusedMs: round(fused.medianMs),
    fusedOnlineMs: online ? round(online.medianMs) : null,
    separateMs: round(separate.medianMs),
    speedup: round(separate.medianMs / fused.medianMs),
    separateIncludesReadback: gpu,
    note: gpu
      ? 'WebGPU exposes only the fused kernel: "separate" = read the (2, V) logits back + the 5 CPU passes'
      : 'CPU: contrastSoftmaxCpu (the fused op, several loops inside) and a one-read-pass online version vs logsoftmax, logsoftmax, combine, softmax, argmax as 5 passes',
  };
}
