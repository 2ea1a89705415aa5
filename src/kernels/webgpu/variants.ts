/**
 * The WebGPU backend's kernel variants, per op (see ../registry.ts for the scheme). Each entry names
 * the WGSL kernels it dispatches (their uniform structs and bindings are checked by
 * test/kernels/uniforms.test.ts) and how to encode a call. The WebGpuBackend, the tests and the bench
 * read this table; to add a variant, add its entry here and its kernel beside the others in the op's
 * file, and nothing else.
 */
import type { ContrastResult } from '../backend.ts';
import type { OpName, OpVariants } from '../registry.ts';
import type { RunnableVariant } from '../variantBackend.ts';
import { addInPlaceKernel, encodeAddInPlace } from '../addInPlace.ts';
import { ATTENTION_MAX_HEAD_DIM, attentionKernel, encodeAttention } from '../attention.ts';
import { CONTRAST_MAX_ROWS, contrastSoftmaxKernel, encodeContrastSoftmax } from '../contrastSoftmax.ts';
import { embeddingKernel, encodeEmbedding } from '../embedding.ts';
import { encodeGatherRows, gatherRowsKernel } from '../gatherRows.ts';
import { encodeKvWrite, kvWriteKernel } from '../kvWrite.ts';
import {
  encodeMatmulRef,
  encodeMatmulTiled,
  encodeMatvec,
  MATVEC_MAX_M,
  matmulRefKernel,
  matmulTiledKernel,
  matvecKernel,
} from '../matmul.ts';
import { encodeRmsnorm, rmsnormKernel } from '../rmsnorm.ts';
import { encodeRope, ropeKernel } from '../rope.ts';
import { encodeSwiglu, swigluKernel } from '../swiglu.ts';
import type { GpuBuf, GpuContext, GpuTensor, GpuWeight } from './context.ts';
import type { WgslKernel } from './wgsl.ts';

/** What a variant encodes into: the backend's recording context and its two fixed buffers. */
export interface GpuEncoder {
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

/** One variant, v1, dispatching one kernel; `limit` when it cannot take every call. */
const only = <O extends OpName>(
  summary: string,
  kernel: WgslKernel,
  run: GpuVariant<O>['run'],
  limit?: Pick<GpuVariant<O>, 'constraints' | 'rejects'>,
): OpVariants<O, GpuVariant<O>> => ({ variants: [{ id: 1, summary, kernels: [kernel], run, ...limit }] });

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
};
