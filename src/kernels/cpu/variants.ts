/**
 * The CPU backend's kernel variants, per op (see ../registry.ts for the scheme). v1 of every op is the
 * plain TypeScript twin in the op's own file (src/kernels/<op>.ts): the reference of the whole project.
 * The CpuBackend, the worker pool, the tests and the bench read this table; to add a variant, add its
 * entry here and its code beside the others (matmul: matmulFast.ts), and nothing else.
 */
import type { ContrastResult } from '../backend.ts';
import type { OpName, OpVariants } from '../registry.ts';
import type { RunnableVariant, VariantTable } from '../variantBackend.ts';
import { addInPlaceCpu } from '../addInPlace.ts';
import { attentionCpu } from '../attention.ts';
import { contrastSoftmaxCpu } from '../contrastSoftmax.ts';
import { embeddingCpu } from '../embedding.ts';
import { gatherRowsCpu } from '../gatherRows.ts';
import { kvWriteCpu } from '../kvWrite.ts';
import { matmulCpu } from '../matmul.ts';
import { rmsnormCpu } from '../rmsnorm.ts';
import { ropeCpu } from '../rope.ts';
import { swigluCpu } from '../swiglu.ts';
import type { CpuBackend, CpuTensor, CpuWeight } from './backend.ts';
import { type MatmulKernel, matmulV2, matmulV3 } from './matmulFast.ts';

/** A CPU variant runs the op on the backend's arrays (CpuTensor / CpuWeight). */
export type CpuVariant<O extends OpName> = RunnableVariant<O, CpuBackend>;

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

function byRows(id: number, summary: string, rows: MatmulKernel, rowBlock: (M: number) => number): CpuRowsMatmul {
  const variant: CpuRowsMatmul = { id, summary, rows, rowBlock, run: (be, ...args) => be.matmulByRows(variant, ...args) };
  return variant;
}

/** 'auto' takes v2 up to this many activation rows (decode: 1 row, or 1 + k for ROSE) and v3 above. */
export const AUTO_V2_MAX_M = 8;

/** The matmul variants, all row kernels (the pool's workers look them up here by id). */
export const cpuMatmulVariants: readonly CpuRowsMatmul[] = [
  byRows(1, 'matmulCpu: one dot product per (weight row, activation row), f64 sum (the reference)', matmulCpu, () => 1),
  byRows(2, 'register-blocked matvec (decode): 8 weight rows, or 4 × 2 activation rows, per pass', matmulV2, (M) => (M === 1 ? 8 : 4)),
  byRows(3, 'cache-blocked matmul (prefill): M panels × K blocks, 4 × 3 register tile', matmulV3, () => 4),
];

/** One variant, v1: the op's CPU twin. */
const only = <O extends OpName>(summary: string, run: CpuVariant<O>['run']): OpVariants<O, CpuVariant<O>> => ({
  variants: [{ id: 1, summary, run }],
});

export const cpuVariants: VariantTable<CpuBackend> = {
  embedding: only('row copies', (_be, out, table, ids) => embeddingCpu(t(out), w(table), ids, last(table))),
  rmsnorm: only('f64 sum of squares per row', (_be, out, x, weight, eps) => rmsnormCpu(t(out), t(x), w(weight), last(x), eps)),
  matmul: {
    variants: cpuMatmulVariants,
    auto: {
      pick: (_out, x, weight) => (x.size / weight.shape[1] <= AUTO_V2_MAX_M ? 2 : 3),
      summary: `v2 for M ≤ ${AUTO_V2_MAX_M}, else v3`,
    },
  },
  rope: only('rotate_half pairs, cos/sin from the table', (_be, x, table, positions, heads) =>
    ropeCpu(t(x), t(table), positions, heads, last(table)),
  ),
  kvWrite: only('row copies into the cache slots', (_be, cache, src, slot0) => {
    const [B, S, Hkv, hd] = cache.shape;
    kvWriteCpu(t(cache), t(src), B, S, Hkv * hd, slot0);
  }),
  attention: only('two passes per query: f64 scores and max, then the softmax-weighted sum of v', (_be, out, q, kc, vc, padLen, slot0) => {
    const [B, S, Hkv, hd] = kc.shape;
    attentionCpu(t(out), t(q), t(kc), t(vc), padLen, slot0, { B, T: q.shape[0] / B, S, H: last(q) / hd, Hkv, hd });
  }),
  swiglu: only('elementwise', (_be, out, gate, up) => swigluCpu(t(out), t(gate), t(up))),
  addInPlace: only('elementwise', (_be, x, y) => addInPlaceCpu(t(x), t(y))),
  gatherRows: only('row copies', (_be, out, x, rows) => gatherRowsCpu(t(out), t(x), rows, last(x))),
  contrastSoftmax: only(
    'f64 log-softmax of every row, then z, the mask and the softmax',
    async (_be, probs, logits, params): Promise<ContrastResult> => contrastSoftmaxCpu(t(probs), t(logits), last(logits), params),
  ),
};
