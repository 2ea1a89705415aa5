/**
 * Each kernel at the model's shapes, on any backend: GFLOP/s, and GB/s of weights (or of the bytes
 * the op must read) per second.
 *
 *   matmul        every projection at decode M = 1 and M = 2 (ROSE) and prefill M = 64, the lm_head
 *                 matvec (V × D) included. At decode the weights of all layers of that role are used
 *                 in turn (layer 0, 1, …), as a decode step does, so they come from memory, not cache.
 *   matvec sweep  ALL the matmuls of one decode step (every layer, the lm_head) at M = 1 and M = 2:
 *                 the decode-matvec figure compared with the stream bandwidth. On the CPU, for every
 *                 variant and thread count.
 *   attention     decode (B = 1 and 2, T = 1) over a context of `ctx` slots, and prefill (B = 1, T = 64).
 *   rmsnorm       M = 1, 2, 64.
 *
 * On WebGPU an op only runs when submitted: a task enqueues its ops and ends with a 4-byte read-back
 * that waits for the GPU. The cost of that read-back alone (`syncMs`, measured) is subtracted.
 */
import type { Backend, Tensor, Weight } from '../../src/kernels/backend.ts';
import { CpuBackend, type CpuTensor, type CpuWeight } from '../../src/kernels/cpu/backend.ts';
import { matmulKernels, type MatmulVariant } from '../../src/kernels/cpu/matmulFast.ts';
import { WasmCpuBackend } from '../../src/kernels/cpu/wasm/backend.ts';
import type { LlamaWeights } from '../../src/model/weights.ts';
import type { BenchModel } from './model.ts';
import { matmulShapes } from './model.ts';
import { round, timeTask, type Timing } from './timing.ts';

export interface KernelFigure {
  kernel: string;
  shape: string;
  /** 'auto' is the backend's own choice; 1/2/3 are the CPU variants forced. */
  variant: string;
  threads: number | null;
  ms: number;
  bestMs: number;
  gflops: number;
  /** GB/s of weights read (matmul, rmsnorm's weight counts too) or of the KV cache (attention). */
  gbps: number;
}

export interface SweepFigure {
  M: number;
  variant: string;
  threads: number | null;
  ms: number;
  bestMs: number;
  gbps: number;
  gflops: number;
}

export interface KernelOptions {
  iterations: number;
  /** Context length for decode attention. */
  ctx: number;
  /** Prefill rows for matmul / attention / rmsnorm. */
  prefillM: number;
  /** CPU: also time the forced variants (1, 2, 3), not only 'auto'. */
  variants: boolean;
  /** Skip M = prefillM matmuls (WebGPU on a software adapter: too slow to be worth it). */
  skipPrefillMatmul?: boolean;
  /** Only these matmul roles (default all). */
  roles?: readonly string[];
  /** Decode shapes cycle through this many layers' weights (default all: from memory, as in a step). */
  rotateLayers?: number;
  log: (line: string) => void;
}

const roleWeights = (w: LlamaWeights, role: string): Weight[] => {
  const key = { q_proj: 'wq', k_proj: 'wk', v_proj: 'wv', o_proj: 'wo', gate_proj: 'wGate', up_proj: 'wUp', down_proj: 'wDown' }[role] as
    | keyof LlamaWeights['layers'][number]
    | undefined;
  return key ? w.layers.map((l) => l[key] as Weight) : [w.lmHead];
};

function fillRandom(be: Backend, t: Tensor, seed: number): void {
  const a = new Float32Array(t.size);
  let s = seed;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) | 0;
    a[i] = ((s >>> 8) / 2 ** 24 - 0.5) * 0.2;
  }
  be.write(t, a);
}

/** Makes the backend finish its queued work: a 4-byte read-back. Returns a function that does it. */
function syncer(be: Backend): () => Promise<void> {
  const tiny = be.alloc([1]);
  return async () => {
    await be.read(tiny);
  };
}

async function syncCost(be: Backend, sync: () => Promise<void>): Promise<number> {
  if (be.name === 'cpu') return 0;
  const t = await timeTask('sync', sync, { iterations: 5, warmup: 2 });
  return t.medianMs;
}

export interface KernelSuite {
  figures: KernelFigure[];
  sweeps: SweepFigure[];
  syncMs: number;
}

export async function runKernelSuite(bm: BenchModel, opts: KernelOptions): Promise<KernelSuite> {
  const be = bm.model.backend;
  const c = bm.model.config;
  const w = bm.model.weights;
  const sync = syncer(be);
  const syncMs = await syncCost(be, sync);
  const threads = be instanceof CpuBackend ? be.threads : null;
  const figures: KernelFigure[] = [];
  const sweeps: SweepFigure[] = [];
  const D = c.hiddenSize;
  // Outputs by size (an op writes M·N floats into any tensor at least that large).
  const outs = new Map<number, Tensor>();
  const outFor = (n: number) => {
    if (!outs.has(n)) outs.set(n, be.alloc([n]));
    return outs.get(n)!;
  };
  // Tensors of the exact shape the ops expect (matmul reads M from x.size / K).
  const xOf = new Map<string, Tensor>();
  const xFor = (M: number, K: number): Tensor => {
    const key = `${M}x${K}`;
    if (!xOf.has(key)) {
      const t = be.alloc([M, K]);
      fillRandom(be, t, M * 7 + K);
      xOf.set(key, t);
    }
    return xOf.get(key)!;
  };

  // The TypeScript tier's variants can be forced here; the WebAssembly tier runs its own choice ('auto').
  const cpuVariants: (MatmulVariant | 'auto')[] =
    be instanceof CpuBackend && !(be instanceof WasmCpuBackend) && opts.variants ? ['auto', 1, 2, 3] : ['auto'];
  const matmulWith = (variant: MatmulVariant | 'auto', out: Tensor, xt: Tensor, wt: Weight, M: number): void => {
    if (variant === 'auto' || !(be instanceof CpuBackend)) {
      be.matmul(out, xt, wt);
      return;
    }
    const [N, K] = wt.shape;
    const o = (out as CpuTensor).data,
      xa = (xt as CpuTensor).data,
      wa = (wt as CpuWeight).data;
    if (be.pool) be.pool.matmul(variant, o, xa, wa, undefined, M, N, K);
    else matmulKernels[variant](o, xa, wa, undefined, M, N, K, 0, N);
  };

  // --- matvec sweeps: every matmul of one decode step ---
  const all: Weight[] = [];
  for (const l of w.layers) all.push(l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown);
  all.push(w.lmHead);
  const bytesPerElem = bm.weightBytesPerStep / (bm.macsPerToken + (2 * c.numHiddenLayers + 1) * D);
  const sweepBytes = bm.macsPerToken * bytesPerElem;
  for (const M of [1, 2]) {
    for (const v of cpuVariants) {
      const outs2 = all.map((wt) => outFor(M * wt.shape[0]));
      const xs = all.map((wt) => xFor(M, wt.shape[1]));
      const t = await timeTask(
        `sweep M=${M} v=${v}`,
        async () => {
          for (let i = 0; i < all.length; i++) matmulWith(v, outs2[i], xs[i], all[i], M);
          if (be.name !== 'cpu') await sync();
        },
        { iterations: be.name === 'cpu' ? Math.max(5, opts.iterations) : opts.iterations, warmup: 1 },
      );
      const ms = Math.max(1e-6, t.medianMs - syncMs);
      const best = Math.max(1e-6, t.bestMs - syncMs);
      sweeps.push({
        M,
        variant: String(v),
        threads,
        ms: round(ms),
        bestMs: round(best),
        gbps: round(sweepBytes / best / 1e6),
        gflops: round((2 * M * bm.macsPerToken) / best / 1e6),
      });
      opts.log(
        `  matvec sweep M=${M} variant ${v}: ${ms.toFixed(1)} ms (best ${best.toFixed(1)}), ${(sweepBytes / best / 1e6).toFixed(2)} GB/s`,
      );
    }
  }

  // --- matmul per shape ---
  for (const s of matmulShapes(c)) {
    if (opts.roles && !opts.roles.includes(s.name)) continue;
    const ws = roleWeights(w, s.name);
    const Ms = s.name === 'lm_head' || opts.skipPrefillMatmul ? [1, 2] : [1, 2, opts.prefillM];
    for (const M of Ms) {
      const rotate = M <= 2 ? ws.slice(0, opts.rotateLayers ?? ws.length) : ws.slice(0, 1); // prefill is compute-bound: one layer's weight
      for (const v of cpuVariants) {
        const out = outFor(M * s.N);
        const xt = xFor(M, s.K);
        const t: Timing = await timeTask(
          `${s.name} M=${M} v=${v}`,
          async () => {
            for (const wt of rotate) matmulWith(v, out, xt, wt, M);
            if (be.name !== 'cpu') await sync();
          },
          { iterations: opts.iterations, warmup: 1 },
        );
        const ms = Math.max(1e-6, (t.medianMs - syncMs) / rotate.length);
        const best = Math.max(1e-6, (t.bestMs - syncMs) / rotate.length);
        const bytes = s.N * s.K * bytesPerElem;
        figures.push({
          kernel: 'matmul',
          shape: `${s.name} M=${M} N=${s.N} K=${s.K}`,
          variant: String(v),
          threads,
          ms: round(ms),
          bestMs: round(best),
          gflops: round((2 * M * s.N * s.K) / best / 1e6),
          gbps: round(bytes / best / 1e6),
        });
      }
    }
    opts.log(`  matmul ${s.name}: done`);
  }

  // --- attention ---
  {
    const H = c.numAttentionHeads,
      Hkv = c.numKeyValueHeads,
      hd = c.headDim;
    const cases = [
      { B: 1, T: 1, S: opts.ctx, name: `decode B=1 ctx=${opts.ctx}` },
      { B: 2, T: 1, S: opts.ctx, name: `decode B=2 ctx=${opts.ctx}` },
      { B: 1, T: opts.prefillM, S: opts.prefillM, name: `prefill B=1 T=${opts.prefillM}` },
    ];
    for (const a of cases) {
      const q = be.alloc([a.B * a.T, H * hd]);
      const out = be.alloc([a.B * a.T, H * hd]);
      const k = be.alloc([a.B, a.S, Hkv, hd]);
      const v = be.alloc([a.B, a.S, Hkv, hd]);
      fillRandom(be, q, 3);
      fillRandom(be, k, 4);
      fillRandom(be, v, 5);
      const pad = new Int32Array(a.B);
      const slot0 = a.S - a.T;
      const reps = be.name === 'cpu' ? 1 : 4;
      const t = await timeTask(
        `attention ${a.name}`,
        async () => {
          for (let r = 0; r < reps; r++) be.attention(out, q, k, v, pad, slot0);
          if (be.name !== 'cpu') await sync();
        },
        { iterations: opts.iterations, warmup: 1 },
      );
      // keys attended: Σ over queries of (slot + 1); FLOPs 4·hd per (query head, key)
      let keys = 0;
      for (let tq = 0; tq < a.T; tq++) keys += slot0 + tq + 1;
      const flops = 4 * hd * H * keys * a.B;
      const bytes = 2 * a.B * a.S * Hkv * hd * 4; // K and V read once (at least)
      const best = Math.max(1e-6, (t.bestMs - syncMs) / reps);
      figures.push({
        kernel: 'attention',
        shape: a.name,
        variant: 'auto',
        threads,
        ms: round(Math.max(1e-6, (t.medianMs - syncMs) / reps)),
        bestMs: round(best),
        gflops: round(flops / best / 1e6),
        gbps: round(bytes / best / 1e6),
      });
      for (const tt of [q, out, k, v]) be.free(tt);
    }
    opts.log('  attention: done');
  }

  // --- rmsnorm ---
  for (const M of [1, 2, opts.prefillM]) {
    const xt = xFor(M, D);
    const out = be.alloc([M, D]);
    const reps = be.name === 'cpu' ? 100 : 8;
    const t = await timeTask(
      `rmsnorm M=${M}`,
      async () => {
        for (let r = 0; r < reps; r++) be.rmsnorm(out, xt, w.finalNorm, c.rmsNormEps);
        if (be.name !== 'cpu') await sync();
      },
      { iterations: opts.iterations, warmup: 1 },
    );
    const best = Math.max(1e-9, (t.bestMs - syncMs) / reps);
    figures.push({
      kernel: 'rmsnorm',
      shape: `M=${M} D=${D}`,
      variant: 'auto',
      threads,
      ms: round(Math.max(1e-9, (t.medianMs - syncMs) / reps)),
      bestMs: round(best),
      gflops: round((4 * M * D) / best / 1e6),
      gbps: round(((2 * M + 1) * D * 4) / best / 1e6),
    });
    be.free(out);
  }
  for (const t of [...outs.values(), ...xOf.values()]) be.free(t);
  return { figures, sweeps, syncMs: round(syncMs) };
}
