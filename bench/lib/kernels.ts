/**
 * Each kernel at the model's shapes, on any backend: GFLOP/s, and GB/s of weights (or of the bytes
 * the op must read) per second. Every op of the registry (src/kernels/registry.ts) is timed; with
 * `variants`, every registered variant of it too (forced through backend.forceKernels), so a new
 * variant is benchmarked with no edit here. A variant whose constraints a shape violates is skipped
 * (logged), never silently replaced.
 *
 *   matmul        every projection at decode M = 1 and M = 2 (ROSE) and prefill M = 64, the lm_head
 *                 matvec (V × D) included. At decode the weights of all layers of that role are used
 *                 in turn (layer 0, 1, …), as a decode step does, so they come from memory, not cache.
 *   matvec sweep  ALL the matmuls of one decode step (every layer, the lm_head) at M = 1 and M = 2:
 *                 the decode-matvec figure compared with the stream bandwidth. On the CPU, for every
 *                 variant and thread count.
 *   attention     decode (B = 1 and 2, T = 1) over a context of `ctx` slots, and prefill (B = 1, T = 64).
 *   the others    decode M = 1, 2 and prefill M = 64 rows at the model's widths (contrastSoftmax:
 *                 the ROSE batch of 2 over the vocabulary, read-back included).
 *
 * On WebGPU an op only runs when submitted: a task enqueues its ops and ends with a 4-byte read-back
 * that waits for the GPU. The cost of that read-back alone (`syncMs`, measured) is subtracted.
 */
import type { Backend, Tensor, Weight } from '../../src/kernels/backend.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { isRoseError } from '../../src/errors.ts';
import { OPS, type KernelChoice, type OpName } from '../../src/kernels/registry.ts';
import type { LlamaWeights } from '../../src/model/weights.ts';
import type { BenchModel } from './model.ts';
import { matmulShapes } from './model.ts';
import { round, timeTask, type Timing } from './timing.ts';

export interface KernelFigure {
  kernel: string;
  shape: string;
  /** 'auto' is the backend's own choice; '1', '2', … a registered variant forced. */
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
  /** Also time every registered variant of each op, forced, not only the backend's automatic choice. */
  variants: boolean;
  /** The matvec sweeps per variant too (off on a software GPU adapter: the reference kernel is slow there). */
  sweepVariants?: boolean;
  /** Skip M = prefillM matmuls (WebGPU on a software adapter: too slow to be worth it). */
  skipPrefillMatmul?: boolean;
  /** Only these matmul roles (default all). */
  roles?: readonly string[];
  /** Decode shapes cycle through this many layers' weights (default all: from memory, as in a step). */
  rotateLayers?: number;
  /** Only this op, and only this variant of it when given (`npm run bench -- --only matmul=2`). */
  only?: { readonly op: OpName; readonly variant?: number };
  log: (line: string) => void;
}

/** Parses `--only op` / `--only op=N`. */
export function parseOnly(value: string | undefined): KernelOptions['only'] {
  if (value === undefined) return undefined;
  const m = /^([A-Za-z]+)(?:=v?(\d+))?$/.exec(value.trim());
  const op = m?.[1] as OpName | undefined;
  if (!m || !op || !OPS.includes(op)) throw new Error(`--only ${value}: expected op or op=N, with op one of ${OPS.join(', ')}`);
  return { op, variant: m[2] === undefined ? undefined : Number(m[2]) };
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

/**
 * The choices an op is timed with: 'auto', then every registered variant when asked (or the one `only`
 * names). An op with a single variant and no rule is timed once: its 'auto' is its v1.
 */
function choicesFor(be: Backend, op: OpName, opts: KernelOptions, all = opts.variants): ('auto' | number)[] {
  if (opts.only?.op === op && opts.only.variant !== undefined) return [opts.only.variant];
  const { variants, auto } = be.variants[op];
  return all && (variants.length > 1 || auto) ? ['auto', ...variants.map((v) => v.id)] : ['auto'];
}

/**
 * Runs `f` with `op` forced to `choice` (the backend's previous choice restored after). Returns false,
 * having logged why, when the variant's constraints refuse this shape (its RoseError('INPUT')).
 */
async function withChoice(be: Backend, op: OpName, choice: 'auto' | number, what: string, opts: KernelOptions, f: () => Promise<void>) {
  const before: KernelChoice = be.kernels;
  const forced: KernelChoice = { ...before };
  if (choice === 'auto') delete forced[op];
  else forced[op] = choice;
  be.forceKernels(forced);
  try {
    await f();
    return true;
  } catch (e) {
    if (isRoseError(e) && e.code === 'INPUT' && choice !== 'auto') {
      opts.log(`  ${what} v${choice}: skipped (${e.message})`);
      return false;
    }
    throw e;
  } finally {
    be.forceKernels(before);
  }
}

/** One timed case of a non-matmul op: `run` enqueues one call; flops and bytes are per call. */
interface OpCase {
  shape: string;
  run: () => unknown;
  flops: number;
  bytes: number;
  /** Calls per timed iteration on the CPU and on WebGPU (cheap ops need many to be measurable). */
  reps: { cpu: number; gpu: number };
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
  const wants = (op: OpName): boolean => !opts.only || opts.only.op === op;
  const made: Tensor[] = [];
  /** A tensor freed at the end of the suite, filled with small random values unless `zero`. */
  const tensor = (shape: number[], seed: number, zero = false): Tensor => {
    const t = be.alloc(shape);
    if (!zero) fillRandom(be, t, seed);
    made.push(t);
    return t;
  };
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

  // --- matvec sweeps: every matmul of one decode step ---
  const all: Weight[] = [];
  for (const l of w.layers) all.push(l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown);
  all.push(w.lmHead);
  const bytesPerElem = bm.weightBytesPerStep / (bm.macsPerToken + (2 * c.numHiddenLayers + 1) * D);
  const sweepBytes = bm.macsPerToken * bytesPerElem;
  for (const M of wants('matmul') ? [1, 2] : []) {
    for (const v of choicesFor(be, 'matmul', opts, opts.variants && (opts.sweepVariants ?? true))) {
      const outs2 = all.map((wt) => outFor(M * wt.shape[0]));
      const xs = all.map((wt) => xFor(M, wt.shape[1]));
      await withChoice(be, 'matmul', v, `matvec sweep M=${M}`, opts, async () => {
        const t = await timeTask(
          `sweep M=${M} v=${v}`,
          async () => {
            for (let i = 0; i < all.length; i++) be.matmul(outs2[i], xs[i], all[i]);
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
      });
    }
  }

  // --- matmul per shape ---
  for (const s of wants('matmul') ? matmulShapes(c) : []) {
    if (opts.roles && !opts.roles.includes(s.name)) continue;
    const ws = roleWeights(w, s.name);
    const Ms = s.name === 'lm_head' || opts.skipPrefillMatmul ? [1, 2] : [1, 2, opts.prefillM];
    for (const M of Ms) {
      const rotate = M <= 2 ? ws.slice(0, opts.rotateLayers ?? ws.length) : ws.slice(0, 1); // prefill is compute-bound: one layer's weight
      for (const v of choicesFor(be, 'matmul', opts)) {
        const out = outFor(M * s.N);
        const xt = xFor(M, s.K);
        await withChoice(be, 'matmul', v, `matmul ${s.name} M=${M}`, opts, async () => {
          const t: Timing = await timeTask(
            `${s.name} M=${M} v=${v}`,
            async () => {
              for (const wt of rotate) be.matmul(out, xt, wt);
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
        });
      }
    }
    opts.log(`  matmul ${s.name}: done`);
  }

  // --- every other op, at decode and prefill shapes ---
  const H = c.numAttentionHeads;
  const Hkv = c.numKeyValueHeads;
  const hd = c.headDim;
  const F = c.intermediateSize;
  const V = c.vocabSize;
  const rowCounts = [1, 2, opts.prefillM];
  /** Each layer's weights for one call, cycled through at decode (from memory, as a step reads them); one layer at prefill. */
  const layerWeights = (pick: (l: LlamaWeights['layers'][number]) => Weight[], M: number): Weight[][] =>
    w.layers.slice(0, M <= 2 ? (opts.rotateLayers ?? w.layers.length) : 1).map(pick);
  const cases: { [O in Exclude<OpName, 'matmul'>]: () => OpCase[] } = {
    embedding: () =>
      rowCounts.map((M) => {
        const ids = Int32Array.from({ length: M }, (_, i) => (i * 7919) % V);
        const out = tensor([M, D], 0, true);
        return {
          shape: `M=${M} D=${D}`,
          run: () => be.embedding(out, w.embed, ids),
          flops: 0,
          bytes: 2 * M * D * 4,
          reps: { cpu: 100, gpu: 8 },
        };
      }),
    rmsnorm: () =>
      rowCounts.map((M) => {
        const xt = xFor(M, D);
        const out = tensor([M, D], 0, true);
        return {
          shape: `M=${M} D=${D}`,
          run: () => be.rmsnorm(out, xt, w.finalNorm, c.rmsNormEps),
          flops: 4 * M * D,
          bytes: (2 * M + 1) * D * 4,
          reps: { cpu: 100, gpu: 8 },
        };
      }),
    rope: () =>
      rowCounts.map((M) => {
        const xt = tensor([M, H * hd], 11);
        const table = tensor([opts.ctx, hd], 12);
        const positions = Int32Array.from({ length: M }, (_, i) => i % opts.ctx);
        return {
          shape: `M=${M} heads=${H} hd=${hd}`,
          run: () => be.rope(xt, table, positions, H),
          flops: 3 * M * H * hd,
          bytes: 3 * M * H * hd * 4,
          reps: { cpu: 100, gpu: 8 },
        };
      }),
    kvWrite: () =>
      [
        { B: 2, T: 1, S: opts.ctx, name: `decode B=2 ctx=${opts.ctx}` },
        { B: 1, T: opts.prefillM, S: opts.prefillM, name: `prefill B=1 T=${opts.prefillM}` },
      ].map((k) => {
        const cache = tensor([k.B, k.S, Hkv, hd], 0, true);
        const src = tensor([k.B * k.T, Hkv * hd], 13);
        return {
          shape: k.name,
          run: () => be.kvWrite(cache, src, k.S - k.T),
          flops: 0,
          bytes: 2 * k.B * k.T * Hkv * hd * 4,
          reps: { cpu: 100, gpu: 8 },
        };
      }),
    attention: () =>
      [
        { B: 1, T: 1, S: opts.ctx, name: `decode B=1 ctx=${opts.ctx}` },
        { B: 2, T: 1, S: opts.ctx, name: `decode B=2 ctx=${opts.ctx}` },
        { B: 1, T: opts.prefillM, S: opts.prefillM, name: `prefill B=1 T=${opts.prefillM}` },
      ].map((a) => {
        const q = tensor([a.B * a.T, H * hd], 3);
        const out = tensor([a.B * a.T, H * hd], 0, true);
        const k = tensor([a.B, a.S, Hkv, hd], 4);
        const v = tensor([a.B, a.S, Hkv, hd], 5);
        const pad = new Int32Array(a.B);
        const slot0 = a.S - a.T;
        // keys attended: Σ over queries of (slot + 1); FLOPs 4·hd per (query head, key)
        let keys = 0;
        for (let tq = 0; tq < a.T; tq++) keys += slot0 + tq + 1;
        return {
          shape: a.name,
          run: () => be.attention(out, q, k, v, pad, slot0),
          flops: 4 * hd * H * keys * a.B,
          bytes: 2 * a.B * a.S * Hkv * hd * 4, // K and V read once (at least)
          reps: { cpu: 1, gpu: 4 },
        };
      }),
    swiglu: () =>
      rowCounts.map((M) => {
        const gate = xFor(M, F);
        const up = tensor([M, F], 14);
        const out = tensor([M, F], 0, true);
        return {
          shape: `M=${M} F=${F}`,
          run: () => be.swiglu(out, gate, up),
          flops: 5 * M * F,
          bytes: 3 * M * F * 4,
          reps: { cpu: 100, gpu: 8 },
        };
      }),
    addInPlace: () =>
      rowCounts.map((M) => {
        const x = tensor([M, D], 15);
        const y = xFor(M, D);
        return { shape: `M=${M} D=${D}`, run: () => be.addInPlace(x, y), flops: M * D, bytes: 3 * M * D * 4, reps: { cpu: 100, gpu: 8 } };
      }),
    gatherRows: () => {
      const x = xFor(opts.prefillM, D);
      const rows = Int32Array.of(opts.prefillM - 1, 0);
      const out = tensor([2, D], 0, true);
      return [
        {
          shape: `2 of M=${opts.prefillM} D=${D}`,
          run: () => be.gatherRows(out, x, rows),
          flops: 0,
          bytes: 4 * D * 4,
          reps: { cpu: 100, gpu: 8 },
        },
      ];
    },
    normQkv: () =>
      rowCounts.map((M) => {
        const ws = layerWeights((l) => [l.wqkv], M);
        const [Nqkv, K] = ws[0][0].shape;
        const x = xFor(M, D);
        const [q, k, v] = [H * hd, Hkv * hd, Hkv * hd].map((n) => tensor([M, n], 0, true));
        let i = 0;
        return {
          shape: `M=${M} N=${Nqkv} K=${K}`,
          run: () => be.normQkv(q, k, v, x, w.layers[0].inputNorm, c.rmsNormEps, ws[i++ % ws.length][0]),
          flops: 2 * M * Nqkv * K + 4 * M * D,
          bytes: (Nqkv + 1) * K * bytesPerElem,
          reps: { cpu: 10, gpu: 4 },
        };
      }),
    ropeKvWrite: () =>
      [
        { B: 2, T: 1, S: opts.ctx, name: `decode B=2 ctx=${opts.ctx}` },
        { B: 1, T: opts.prefillM, S: opts.prefillM, name: `prefill B=1 T=${opts.prefillM}` },
      ].map((r) => {
        const M = r.B * r.T;
        const q = tensor([M, H * hd], 17);
        const k = tensor([M, Hkv * hd], 18);
        const v = tensor([M, Hkv * hd], 19);
        const kc = tensor([r.B, r.S, Hkv, hd], 0, true);
        const vc = tensor([r.B, r.S, Hkv, hd], 0, true);
        const table = tensor([opts.ctx + opts.prefillM, hd], 20);
        const positions = Int32Array.from({ length: M }, (_, i) => i % opts.ctx);
        return {
          shape: r.name,
          run: () => be.ropeKvWrite(q, k, v, kc, vc, table, positions, r.S - r.T),
          flops: 3 * M * (H + Hkv) * hd,
          bytes: (3 * M * (H + Hkv) * hd + 4 * M * Hkv * hd) * 4,
          reps: { cpu: 100, gpu: 8 },
        };
      }),
    matmulAdd: () =>
      rowCounts.map((M) => {
        const ws = layerWeights((l) => [l.wo], M);
        const [N, K] = ws[0][0].shape;
        const x = tensor([M, N], 21);
        const y = xFor(M, K);
        let i = 0;
        return {
          shape: `o_proj M=${M} N=${N} K=${K}`,
          run: () => be.matmulAdd(x, y, ws[i++ % ws.length][0]),
          flops: 2 * M * N * K + M * N,
          bytes: N * K * bytesPerElem,
          reps: { cpu: 10, gpu: 4 },
        };
      }),
    normGateUpSwiglu: () =>
      rowCounts.map((M) => {
        const ws = layerWeights((l) => [l.wGate, l.wUp], M);
        const x = xFor(M, D);
        const out = tensor([M, F], 0, true);
        let i = 0;
        return {
          shape: `M=${M} F=${F} K=${D}`,
          run: () => {
            const [wg, wu] = ws[i++ % ws.length];
            be.normGateUpSwiglu(out, x, w.layers[0].postAttnNorm, c.rmsNormEps, wg, wu);
          },
          flops: 4 * M * F * D + 4 * M * D + 5 * M * F,
          bytes: (2 * F + 1) * D * bytesPerElem,
          reps: { cpu: 4, gpu: 2 },
        };
      }),
    normMatmul: () =>
      [1, 2].map((M) => {
        const x = xFor(M, D);
        const out = outFor(M * V);
        return {
          shape: `lm_head M=${M} N=${V} K=${D}`,
          run: () => be.normMatmul(out, x, w.finalNorm, c.rmsNormEps, w.lmHead),
          flops: 2 * M * V * D + 4 * M * D,
          bytes: (V + 1) * D * bytesPerElem,
          reps: { cpu: 1, gpu: 1 },
        };
      }),
    contrastSoftmax: () => {
      const logits = tensor([2, V], 16);
      const probs = tensor([V], 0, true);
      const params = { alphas: [0.5], temperature: 1, beta: 0, uniform: 0.5 };
      // Each call reads its 12-byte decision back: the sync is inside it.
      return [
        {
          shape: `R=2 V=${V}`,
          run: () => be.contrastSoftmax(probs, logits, params),
          flops: 12 * V,
          bytes: 3 * V * 4,
          reps: { cpu: 10, gpu: 2 },
        },
      ];
    },
  };
  for (const op of OPS) {
    if (op === 'matmul' || !wants(op)) continue;
    for (const k of cases[op]()) {
      for (const v of choicesFor(be, op, opts)) {
        const reps = be.name === 'cpu' ? k.reps.cpu : k.reps.gpu;
        await withChoice(be, op, v, `${op} ${k.shape}`, opts, async () => {
          const t = await timeTask(
            `${op} ${k.shape} v=${v}`,
            async () => {
              for (let r = 0; r < reps; r++) await k.run();
              if (be.name !== 'cpu') await sync();
            },
            { iterations: opts.iterations, warmup: 1 },
          );
          const best = Math.max(1e-9, (t.bestMs - syncMs) / reps);
          figures.push({
            kernel: op,
            shape: k.shape,
            variant: String(v),
            threads,
            ms: round(Math.max(1e-9, (t.medianMs - syncMs) / reps)),
            bestMs: round(best),
            gflops: round(k.flops / best / 1e6),
            gbps: round(k.bytes / best / 1e6),
          });
        });
      }
    }
    opts.log(`  ${op}: done`);
  }
  for (const t of [...outs.values(), ...xOf.values(), ...made]) be.free(t);
  return { figures, sweeps, syncMs: round(syncMs) };
}
