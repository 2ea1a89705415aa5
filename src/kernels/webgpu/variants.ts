/**
 * The WebGPU backend's kernel variants, per op (see ../registry.ts for the scheme). Each entry names
 * the WGSL kernels it dispatches (their uniform structs and bindings are checked by
 * test/kernels/uniforms.test.ts) and how to encode a call. The WebGpuBackend, the tests and the bench
 * read this table; to add a variant, add its entry here and its kernel beside the others in the op's
 * file, and nothing else.
 */
import type { Backend, ContrastResult } from '../backend.ts';
import { composed } from '../composed.ts';
import type { FusedOp, OpArgs, OpName, OpResult, OpVariants } from '../registry.ts';
import type { RunnableVariant } from '../variantBackend.ts';
import { addInPlaceKernel, encodeAddInPlace } from '../addInPlace.ts';
import { ATTENTION_MAX_HEAD_DIM, attentionKernel, encodeAttention } from '../attention.ts';
import { CONTRAST_MAX_ROWS, contrastSoftmaxKernel, encodeContrastSoftmax } from '../contrastSoftmax.ts';
import { embeddingKernel, encodeEmbedding } from '../embedding.ts';
import { encodeGatherRows, gatherRowsKernel } from '../gatherRows.ts';
import { encodeKvWrite, kvWriteKernel } from '../kvWrite.ts';
import { encodeMatmulRef, encodeMatmulTiled, encodeMatvec, matmulRefKernel, matmulTiledKernel, matvecKernel } from '../matmul.ts';
import { encodeNormGateUpSwiglu, normGateUpSwigluKernel } from '../normGateUpSwiglu.ts';
import { encodeNormMatvec, normMatvecKernel } from '../normMatmul.ts';
import { encodeNormQkv, normQkvKernel } from '../normQkv.ts';
import { encodeRmsnorm, rmsnormKernel } from '../rmsnorm.ts';
import { encodeRope, ropeKernel } from '../rope.ts';
import { encodeRopeKvWrite, ropeKvWriteKernel } from '../ropeKvWrite.ts';
import { encodeSwiglu, swigluKernel } from '../swiglu.ts';
import type { GpuBuf, GpuContext, GpuTensor, GpuWeight } from './context.ts';
import { MATVEC_MAX_M, type WgslKernel } from './wgsl.ts';

/** What a variant encodes into: the backend's recording context and its two fixed buffers. */
export interface GpuEncoder {
  /** The backend itself: a composed variant (v1 of a fused op) calls its ops. */
  readonly backend: Backend;
  readonly ctx: GpuContext;
  /** Bound where a matmul has no bias (the binding must exist). */
  readonly noBias: GpuBuf;
  /** contrastSoftmax's [argmax, sampled, non-finite row]. */
  readonly result: GpuBuf;
}

export interface GpuVariant<O extends OpName> extends RunnableVariant<O, GpuEncoder> {
  /** The WGSL kernels it dispatches. */
  readonly kernels: readonly WgslKernel[];
}

const t = (x: unknown): GpuTensor => x as GpuTensor;
const w = (x: unknown): GpuWeight => x as GpuWeight;
/** Activation rows of a matmul call: x is (M, K) for a weight (N, K). */
const matmulRows = (x: { size: number }, weight: { shape: readonly number[] }): number => x.size / weight.shape[1];

/** Activation rows of a call whose x is (M, K) for a weight (N, K), as a constraint's words. */
const decodeRows = (x: { size: number }, weight: { shape: readonly number[] }): string | undefined => {
  const M = matmulRows(x, weight);
  return M > MATVEC_MAX_M ? `M = ${M}` : undefined;
};

/** A fused op's v1: the composition (composed.ts), run on the backend itself. */
const composedV1 = <O extends FusedOp>(op: O): GpuVariant<O> => ({
  id: 1,
  summary: composed[op].summary,
  kernels: [],
  run: (g, ...args) => (composed[op].run as (be: Backend, ...a: OpArgs<O>) => OpResult<O>)(g.backend, ...args),
});

/** The automatic choice of a fused op: its fused variant `id` wherever that takes the call, else v1 (the composition). */
const fusedWhereItFits = <O extends FusedOp>(variants: readonly GpuVariant<O>[], id: number): OpVariants<O, GpuVariant<O>>['auto'] => ({
  pick: (...args) => (variants[id - 1].rejects?.(...args) === undefined ? id : 1),
  summary: `v${id} where it fits${variants[id - 1].constraints ? ` (${variants[id - 1].constraints})` : ''}, else v1`,
});

/** One variant, v1, dispatching one kernel; `limit` when it cannot take every call. */
const only = <O extends OpName>(
  summary: string,
  kernel: WgslKernel,
  run: GpuVariant<O>['run'],
  limit?: Pick<GpuVariant<O>, 'constraints' | 'rejects'>,
): OpVariants<O, GpuVariant<O>> => ({ variants: [{ id: 1, summary, kernels: [kernel], run, ...limit }] });

// The fused ops' variants (each op's v1 is the composition; see composed.ts).
const normQkvVariants: readonly GpuVariant<'normQkv'>[] = [
  composedV1('normQkv'),
  {
    id: 2,
    summary: 'fused decode kernel: the norm per workgroup, 4 rows of the stacked [wq; wk; wv] each',
    constraints: `M ≤ ${MATVEC_MAX_M}`,
    rejects: (_q, _k, _v, x, _norm, _eps, wqkv) => decodeRows(x, wqkv),
    kernels: [normQkvKernel],
    run: (g, q, k, v, x, norm, eps, wqkv, bqkv) =>
      encodeNormQkv(g.ctx, t(q), t(k), t(v), t(x), w(norm), eps, w(wqkv), bqkv && w(bqkv), g.noBias),
  },
];
const ropeKvWriteVariants: readonly GpuVariant<'ropeKvWrite'>[] = [
  composedV1('ropeKvWrite'),
  {
    id: 2,
    summary: 'fused: one thread per rotated pair of q and k, or copied pair of v, into the cache',
    kernels: [ropeKvWriteKernel],
    run: (g, q, k, v, kc, vc, table, positions, slot0) =>
      encodeRopeKvWrite(g.ctx, t(q), t(k), t(v), t(kc), t(vc), t(table), positions, slot0),
  },
];
const matmulAddVariants: readonly GpuVariant<'matmulAdd'>[] = [
  composedV1('matmulAdd'),
  {
    id: 2,
    summary: 'fused decode: the matvec (matmul v2) with the residual add in its epilogue',
    constraints: `M ≤ ${MATVEC_MAX_M}`,
    rejects: (_x, y, weight) => decodeRows(y, weight),
    kernels: [matvecKernel],
    run: (g, x, y, weight, bias) => encodeMatvec(g.ctx, t(x), t(y), w(weight), bias && w(bias), g.noBias, true),
  },
  {
    id: 3,
    summary: 'fused prefill: the tiled matmul (matmul v3) with the residual add in its epilogue',
    kernels: [matmulTiledKernel],
    run: (g, x, y, weight, bias) => encodeMatmulTiled(g.ctx, t(x), t(y), w(weight), bias && w(bias), g.noBias, true),
  },
];
const normGateUpSwigluVariants: readonly GpuVariant<'normGateUpSwiglu'>[] = [
  composedV1('normGateUpSwiglu'),
  {
    id: 2,
    summary: 'fused decode kernel: the norm per workgroup, 2 gate and 2 up rows each, silu(gate)·up out',
    constraints: `M ≤ ${MATVEC_MAX_M}, gate and up of one dtype`,
    rejects: (_out, x, _norm, _eps, wGate, wUp) =>
      decodeRows(x, wGate) ?? (wGate.dtype !== wUp.dtype ? `gate ${wGate.dtype}, up ${wUp.dtype}` : undefined),
    kernels: [normGateUpSwigluKernel],
    run: (g, out, x, norm, eps, wGate, wUp, bGate, bUp) =>
      encodeNormGateUpSwiglu(g.ctx, t(out), t(x), w(norm), eps, w(wGate), w(wUp), bGate && w(bGate), bUp && w(bUp), g.noBias),
  },
];
const normMatmulVariants: readonly GpuVariant<'normMatmul'>[] = [
  composedV1('normMatmul'),
  {
    id: 2,
    summary: 'fused decode kernel: the norm per workgroup, 4 weight rows each',
    constraints: `M ≤ ${MATVEC_MAX_M}`,
    rejects: (_out, x, _norm, _eps, weight) => decodeRows(x, weight),
    kernels: [normMatvecKernel],
    run: (g, out, x, norm, eps, weight, bias) => encodeNormMatvec(g.ctx, t(out), t(x), w(norm), eps, w(weight), bias && w(bias), g.noBias),
  },
];

export const gpuVariants: { readonly [O in OpName]: OpVariants<O, GpuVariant<O>> } = {
  embedding: only('one thread per element, one dispatch per weight chunk', embeddingKernel, (g, out, table, ids) =>
    encodeEmbedding(g.ctx, t(out), w(table), ids),
  ),
  rmsnorm: only('one workgroup per row, tree-reduced sum of squares', rmsnormKernel, (g, out, x, weight, eps) =>
    encodeRmsnorm(g.ctx, t(out), t(x), w(weight), eps),
  ),
  matmul: {
    variants: [
      {
        id: 1,
        summary: 'one thread per output, k in order (the reference)',
        kernels: [matmulRefKernel],
        run: (g, out, x, weight, bias) => encodeMatmulRef(g.ctx, t(out), t(x), w(weight), bias && w(bias), g.noBias),
      },
      {
        id: 2,
        summary: 'decode matvec: a workgroup per weight row, each weight read once for all M rows',
        constraints: `M ≤ ${MATVEC_MAX_M}`,
        rejects: (_out, x, weight) => (matmulRows(x, weight) > MATVEC_MAX_M ? `M = ${matmulRows(x, weight)}` : undefined),
        kernels: [matvecKernel],
        run: (g, out, x, weight, bias) => encodeMatvec(g.ctx, t(out), t(x), w(weight), bias && w(bias), g.noBias),
      },
      {
        id: 3,
        summary: 'prefill matmul: 64 × 64 output tiles staged through workgroup memory',
        kernels: [matmulTiledKernel],
        run: (g, out, x, weight, bias) => encodeMatmulTiled(g.ctx, t(out), t(x), w(weight), bias && w(bias), g.noBias),
      },
    ],
    auto: {
      pick: (_out, x, weight) => (matmulRows(x, weight) <= MATVEC_MAX_M ? 2 : 3),
      summary: `v2 for M ≤ ${MATVEC_MAX_M}, else v3`,
    },
  },
  rope: only('one thread per rotated pair', ropeKernel, (g, x, table, positions, heads) =>
    encodeRope(g.ctx, t(x), t(table), positions, heads),
  ),
  kvWrite: only('one thread per copied element', kvWriteKernel, (g, cache, src, slot0) => encodeKvWrite(g.ctx, t(cache), t(src), slot0)),
  attention: only(
    'a workgroup per query, online softmax over 64-key blocks',
    attentionKernel,
    (g, out, q, kc, vc, padLen, slot0) => encodeAttention(g.ctx, t(out), t(q), t(kc), t(vc), padLen, slot0),
    {
      constraints: `head_dim ≤ ${ATTENTION_MAX_HEAD_DIM}`,
      rejects: (_out, _q, kc) => (kc.shape[3] > ATTENTION_MAX_HEAD_DIM ? `head_dim ${kc.shape[3]}` : undefined),
    },
  ),
  swiglu: only('one thread per element', swigluKernel, (g, out, gate, up) => encodeSwiglu(g.ctx, t(out), t(gate), t(up))),
  addInPlace: only('one thread per element', addInPlaceKernel, (g, x, y) => encodeAddInPlace(g.ctx, t(x), t(y))),
  gatherRows: only('one thread per element', gatherRowsKernel, (g, out, x, rows) => encodeGatherRows(g.ctx, t(out), t(x), rows)),
  contrastSoftmax: only(
    'the whole decision in one workgroup; reads back 12 bytes',
    contrastSoftmaxKernel,
    async (g, probs, logits, params): Promise<ContrastResult> => {
      encodeContrastSoftmax(g.ctx, t(probs), t(logits), params, g.result);
      const [argmax, sampled, nonFinite] = new Uint32Array(await g.ctx.readBack(g.result, 12));
      return { argmax, sampled, nonFiniteRow: nonFinite === 0xffffffff ? -1 : nonFinite };
    },
    {
      constraints: `rows ≤ ${CONTRAST_MAX_ROWS}`,
      rejects: (_probs, logits) => {
        const R = logits.size / logits.shape[logits.shape.length - 1];
        return R > CONTRAST_MAX_ROWS ? `${R} rows` : undefined;
      },
    },
  ),
  normQkv: { variants: normQkvVariants, auto: fusedWhereItFits(normQkvVariants, 2) },
  ropeKvWrite: { variants: ropeKvWriteVariants, auto: fusedWhereItFits(ropeKvWriteVariants, 2) },
  matmulAdd: {
    variants: matmulAddVariants,
    auto: { pick: (_x, y, weight) => (decodeRows(y, weight) ? 3 : 2), summary: `v2 for M ≤ ${MATVEC_MAX_M}, else v3` },
  },
  normGateUpSwiglu: { variants: normGateUpSwigluVariants, auto: fusedWhereItFits(normGateUpSwigluVariants, 2) },
  normMatmul: { variants: normMatmulVariants, auto: fusedWhereItFits(normMatmulVariants, 2) },
};
