/**
 * The CPU backend's kernel variants, per op (see ../registry.ts for the scheme). v1 of every op is the
 * plain TypeScript twin in the op's own file (src/kernels/<op>.ts): the reference of the whole project.
 * Above it, in one numbered list per op, the faster TypeScript variants (matmul v2, v3:
 * matmulFast.ts) and the WebAssembly SIMD ones (matmul v4, v5: wasm/matmul.ts; attention v2:
 * wasm/attention.ts; contrastSoftmax v2: wasm/contrastSoftmax.ts; their kernels in wasm/assembly/).
 *
 * The two tiers of the CPU backend (cpu/backend.ts) share these lists and differ only in their
 * automatic choice (`cpuTierVariants.ts` / `.wasm`). The CpuBackend, the worker pool, the tests and
 * the bench read this table; to add a variant, add its entry here and its code beside the others, and
 * nothing else.
 */
import type { ContrastResult, Tensor } from '../backend.ts';
import type { OpName, OpVariants } from '../registry.ts';
import type { RunnableVariant } from '../variantBackend.ts';
import { addInPlaceCpu } from '../addInPlace.ts';
import { attentionCpu } from '../attention.ts';
import { composed } from '../composed.ts';
import { contrastSoftmaxCpu } from '../contrastSoftmax.ts';
import { embeddingCpu, embeddingStored } from '../embedding.ts';
import { gatherRowsCpu } from '../gatherRows.ts';
import { kvWriteCpu } from '../kvWrite.ts';
import { matmulCpu } from '../matmul.ts';
import { rmsnormCpu } from '../rmsnorm.ts';
import { ropeCpu } from '../rope.ts';
import { swigluCpu } from '../swiglu.ts';
import { bytesPerElement } from '../backend.ts';
import type { CpuBackend, CpuTensor, CpuWeight } from './backend.ts';
import { type MatmulKernel, matmulV2, matmulV3 } from './matmulFast.ts';
import type { Operand } from './wasm/memory.ts';
import { wasmAttention } from './wasm/attention.ts';
import { wasmContrastSoftmax } from './wasm/contrastSoftmax.ts';
import { wasmMatmul, type WasmMatmulVariant } from './wasm/matmul.ts';

/** How a variant reads a weight matrix: widened to f32 (every TypeScript variant), or in its stored dtype from WebAssembly memory. */
export type WeightLayout = 'f32' | 'stored';

/** A CPU variant runs the op on the backend's arrays (CpuTensor / CpuWeight). */
export interface CpuVariant<O extends OpName> extends RunnableVariant<O, CpuBackend> {
  /** It runs WebAssembly SIMD (cpu/wasm/): an engine without it cannot force it. */
  readonly wasm?: true;
  /** The layout of the matrices it reads; absent: f32. */
  readonly layout?: WeightLayout;
}
export const layoutOf = (v: { readonly layout?: WeightLayout } | undefined): WeightLayout => v?.layout ?? 'f32';

/** Both tiers' table: every op's variants and the tier's automatic choice. */
export type CpuVariantTable = { readonly [O in OpName]: OpVariants<O, CpuVariant<O>> };

/**
 * A matmul variant written as a kernel over output rows [n0, n1): the backend runs it whole on one
 * thread, or split by rows across the worker pool (cpu/pool.ts), whose workers look it up here by id.
 */
export interface CpuRowsMatmul extends CpuVariant<'matmul'> {
  readonly rows: MatmulKernel;
  /** Rows a thread's share is rounded to, so every thread but the last runs whole register blocks. */
  readonly rowBlock: (M: number) => number;
}

const t = (x: unknown): Float32Array => (x as CpuTensor).data;
const w = (x: unknown): Float32Array => (x as CpuWeight).data;
const last = (x: { shape: readonly number[] }): number => x.shape[x.shape.length - 1];
/** A tensor as an operand of a WebAssembly kernel (where it lives, and whether the kernel writes it). */
export const operand = (x: Tensor, write = false): Operand => ({ data: (x as CpuTensor).data, at: (x as CpuTensor).at, write });

function byRows(id: number, summary: string, rows: MatmulKernel, rowBlock: (M: number) => number): CpuRowsMatmul {
  const variant: CpuRowsMatmul = { id, summary, rows, rowBlock, run: (be, ...args) => be.matmulByRows(variant, ...args) };
  return variant;
}

/** A WebAssembly matmul (wasm/matmul.ts) on a weight kept in its stored dtype. */
function wasmMatmulVariant(id: WasmMatmulVariant, summary: string): CpuVariant<'matmul'> {
  return {
    id,
    summary,
    wasm: true,
    layout: 'stored',
    run: (be, out, x, weight, bias) => {
      const cw = weight as CpuWeight;
      const [N, K] = cw.shape;
      wasmMatmul({
        memory: be.wasm,
        pool: be.pool,
        variant: id,
        out: operand(out, true),
        x: operand(x),
        chunks: cw.stored,
        dtype: cw.dtype,
        bias: bias && (bias as CpuWeight).operand,
        M: x.size / K,
        N,
        K,
      });
    },
  };
}

/** The TypeScript matmul variants, all row kernels (the pool's workers look them up here by id). */
export const cpuMatmulVariants: readonly CpuRowsMatmul[] = [
  byRows(1, 'matmulCpu: one dot product per (weight row, activation row), f64 sum (the reference)', matmulCpu, () => 1),
  byRows(2, 'register-blocked matvec (decode): 8 weight rows, or 4 × 2 activation rows, per pass', matmulV2, (M) => (M === 1 ? 8 : 4)),
  byRows(3, 'cache-blocked matmul (prefill): M panels × K blocks, 4 × 3 register tile', matmulV3, () => 4),
];

/** 'auto' takes the decode matvec (v2, v4) up to this many activation rows (1, or 1 + k for ROSE) and the tiled matmul (v3, v5) above. */
export const AUTO_MATVEC_MAX_M = 8;
const rowsOf = (x: Tensor, weight: { shape: readonly number[] }) => x.size / weight.shape[1];

const matmulVariants: readonly CpuVariant<'matmul'>[] = [
  ...cpuMatmulVariants,
  wasmMatmulVariant(4, 'WebAssembly SIMD matvec (decode): stored-dtype weights, each read once for every activation row'),
  wasmMatmulVariant(5, 'WebAssembly SIMD tiled matmul (prefill): 3 × 3 register tiles over 48-row panels, stored dtype'),
];

/** One variant, v1: the op's CPU twin. */
const only = <O extends OpName>(summary: string, run: CpuVariant<O>['run']): readonly CpuVariant<O>[] => [{ id: 1, summary, run }];

/** Every op's variants, for both tiers. */
const variants: { readonly [O in OpName]: readonly CpuVariant<O>[] } = {
  embedding: [
    { id: 1, summary: 'row copies', run: (_be, out, table, ids) => embeddingCpu(t(out), w(table), ids, last(table)) },
    {
      id: 2,
      summary: 'rows widened from the stored dtype, in WebAssembly memory (the WebAssembly tier)',
      layout: 'stored',
      run: (_be, out, table, ids) => {
        const cw = table as CpuWeight;
        const D = last(cw);
        const rowBytes = D * bytesPerElement[cw.dtype];
        const row = (id: number) => {
          const c = cw.stored.find((ch) => id >= ch.row0 && id < ch.row0 + ch.rows)!;
          return c.arena.u8(c.ptr + (id - c.row0) * rowBytes, rowBytes);
        };
        embeddingStored(t(out), row, cw.dtype, ids, D);
      },
    },
  ],
  rmsnorm: only('f64 sum of squares per row', (_be, out, x, weight, eps) => rmsnormCpu(t(out), t(x), w(weight), last(x), eps)),
  matmul: matmulVariants,
  rope: only('rotate_half pairs, cos/sin from the table', (_be, x, table, positions, heads) =>
    ropeCpu(t(x), t(table), positions, heads, last(table)),
  ),
  kvWrite: only('row copies into the cache slots', (_be, cache, src, slot0) => {
    const [B, S, Hkv, hd] = cache.shape;
    kvWriteCpu(t(cache), t(src), B, S, Hkv * hd, slot0);
  }),
  attention: [
    {
      id: 1,
      summary: 'two passes per query: f64 scores and max, then the softmax-weighted sum of v',
      run: (_be, out, q, kc, vc, padLen, slot0) => {
        const [B, S, Hkv, hd] = kc.shape;
        attentionCpu(t(out), t(q), t(kc), t(vc), padLen, slot0, { B, T: q.shape[0] / B, S, H: last(q) / hd, Hkv, hd });
      },
    },
    {
      id: 2,
      summary: 'WebAssembly SIMD: f32 scores (four lanes over the head), max, exp, then the weighted sum of v, four dims at a time',
      wasm: true,
      run: (be, out, q, kc, vc, padLen, slot0) => {
        const [B, S, Hkv, hd] = kc.shape;
        const dims = { B, T: q.shape[0] / B, S, H: last(q) / hd, Hkv, hd };
        wasmAttention({
          memory: be.wasm,
          out: operand(out, true),
          q: operand(q),
          kCache: operand(kc),
          vCache: operand(vc),
          padLen,
          slot0,
          dims,
        });
      },
    },
  ],
  swiglu: only('elementwise', (_be, out, gate, up) => swigluCpu(t(out), t(gate), t(up))),
  addInPlace: only('elementwise', (_be, x, y) => addInPlaceCpu(t(x), t(y))),
  gatherRows: only('row copies', (_be, out, x, rows) => gatherRowsCpu(t(out), t(x), rows, last(x))),
  contrastSoftmax: [
    {
      id: 1,
      summary: 'f64 log-softmax of every row, then z, the mask and the softmax',
      run: async (_be, probs, logits, params): Promise<ContrastResult> => contrastSoftmaxCpu(t(probs), t(logits), last(logits), params),
    },
    {
      id: 2,
      summary: 'WebAssembly SIMD, f32: row max and Σ exp (sixteen partial sums), z and its argmax, the softmax; the CDF rule in f64',
      wasm: true,
      run: async (be, probs, logits, params): Promise<ContrastResult> =>
        wasmContrastSoftmax({ memory: be.wasm, probs: operand(probs, true), logits: operand(logits), V: last(logits), params }),
    },
  ],
  // The fused ops: the composition of the ops above (composed.ts), as on every backend.
  normQkv: only(composed.normQkv.summary, composed.normQkv.run),
  ropeKvWrite: only(composed.ropeKvWrite.summary, composed.ropeKvWrite.run),
  matmulAdd: only(composed.matmulAdd.summary, composed.matmulAdd.run),
  normGateUpSwiglu: only(composed.normGateUpSwiglu.summary, composed.normGateUpSwiglu.run),
  normMatmul: only(composed.normMatmul.summary, composed.normMatmul.run),
};

/**
 * The two tiers' automatic choices. TypeScript: v2 (matvec) for M ≤ 8, else v3; every other op v1.
 * WebAssembly: v4 (matvec) for M ≤ 8, else v5; the embedding reads the stored dtype (v2); attention
 * and contrastSoftmax their WebAssembly kernels (v2): after the matmuls, the per-op profile of a decode
 * step (the bench's "Where a decode step's time goes") put them first; the other ops stay v1.
 */
export const cpuTierVariants: { readonly ts: CpuVariantTable; readonly wasm: CpuVariantTable } = {
  ts: {
    ...withoutAuto(),
    matmul: {
      variants: variants.matmul,
      auto: {
        pick: (_out, x, weight) => (rowsOf(x, weight) <= AUTO_MATVEC_MAX_M ? 2 : 3),
        summary: `v2 for M ≤ ${AUTO_MATVEC_MAX_M}, else v3`,
      },
    },
  },
  wasm: {
    ...withoutAuto(),
    embedding: { variants: variants.embedding, auto: { pick: () => 2, summary: 'v2' } },
    attention: { variants: variants.attention, auto: { pick: () => 2, summary: 'v2' } },
    contrastSoftmax: { variants: variants.contrastSoftmax, auto: { pick: () => 2, summary: 'v2' } },
    matmul: {
      variants: variants.matmul,
      auto: {
        pick: (_out, x, weight) => (rowsOf(x, weight) <= AUTO_MATVEC_MAX_M ? 4 : 5),
        summary: `v4 for M ≤ ${AUTO_MATVEC_MAX_M}, else v5`,
      },
    },
  },
};

/** Every op's variants with no automatic rule (v1). */
function withoutAuto(): CpuVariantTable {
  const table: Partial<Record<OpName, OpVariants<OpName, CpuVariant<OpName>>>> = {};
  for (const op of Object.keys(variants) as OpName[]) table[op] = { variants: variants[op] as readonly CpuVariant<OpName>[] };
  return table as CpuVariantTable;
}

/** The TypeScript tier's table (the registry's listing of the CPU backend's variants, and their reference choice). */
export const cpuVariants: CpuVariantTable = cpuTierVariants.ts;
