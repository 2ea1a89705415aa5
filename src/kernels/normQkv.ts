/**
 * The attention sublayer's input: rmsnorm, then the q, k and v projections of the normalised rows.
 *
 *   xn = rmsnorm(x; norm, eps)        q (M, Nq) = xn · wqᵀ [+ bq]     k, v (M, Nkv) likewise
 *
 * The three weights are stacked at load (Backend.uploadStacked): wqkv (Nq + 2·Nkv, D) = [wq; wk; wv],
 * its parts views of its rows, so the fused kernel reads all three through one binding (one dispatch,
 * within the storage-buffer budget of compatibility-mode adapters) and the memory is paid once.
 *
 * v1, on every backend, is the composition of today's ops on the parts; the fused decode kernel (v2 on
 * WebGPU) is normMatmul's, with output row n routed to q, k or v.
 */
import { RoseError } from '../errors.ts';
import type { Backend, Tensor, Weight } from './backend.ts';
import { normMatvecFields, NORM_MATVEC_ROWS, NORM_MATVEC_WG, normMatvecSource } from './normMatmul.ts';
import { scratchTensor } from './scratch.ts';
import type { GpuBuf, GpuContext, GpuTensor, GpuWeight } from './webgpu/context.ts';
import { uniforms } from './webgpu/uniforms.ts';
import { wgslKernel } from './webgpu/wgsl.ts';

/** The parts of a weight stacked by uploadStacked, checked to be `n`; a RoseError('INPUT') otherwise. */
export function stackedParts(op: string, w: Weight, n: number): readonly Weight[] {
  if (w.parts?.length !== n)
    throw new RoseError(
      'INPUT',
      `${op}: weight ${w.name} is not a stack of ${n} weights`,
      'upload them with Backend.uploadStacked (src/model/weights.ts does for q, k and v)',
    );
  return w.parts;
}

/** v1: rmsnorm, then one matmul per part, each the backend's own op (its chosen variant). */
export function normQkvComposed(
  be: Backend,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  x: Tensor,
  norm: Weight,
  eps: number,
  wqkv: Weight,
  bqkv?: Weight,
): void {
  const [wq, wk, wv] = stackedParts('normQkv', wqkv, 3);
  const biases = bqkv && stackedParts('normQkv', bqkv, 3); // [bq, bk, bv], or none
  // Stryker disable next-line StringLiteral: a role only keys this op's temporary in kernels/scratch.ts; any other name is the same
  const xn = scratchTensor(be, 'normed', x.shape); // (M, D)
  be.rmsnorm(xn, x, norm, eps);
  be.matmul(q, xn, wq, biases?.[0]); // (M, Nq)
  be.matmul(k, xn, wk, biases?.[1]); // (M, Nkv)
  be.matmul(v, xn, wv, biases?.[2]); // (M, Nkv)
}

// --- WebGPU ---------------------------------------------------------------------------------------

const params = uniforms({ ...normMatvecFields, Nq: 'u32', Nkv: 'u32' });

/** v2: normMatmul's fused decode kernel over [wq; wk; wv]; row n < Nq goes to q, then k, then v. */
export const normQkvKernel = wgslKernel({
  name: 'normQkv',
  params,
  access: 'wwwrrrr',
  workgroupSize: NORM_MATVEC_WG,
  code: (dtypes) =>
    normMatvecSource(
      dtypes,
      `@group(0) @binding(1) var<storage, read_write> q: array<f32>; // (M, Nq)
@group(0) @binding(2) var<storage, read_write> k: array<f32>; // (M, Nkv)
@group(0) @binding(3) var<storage, read_write> v: array<f32>; // (M, Nkv)`,
      (m, n, value) => `if (${n} < p.Nq) { q[${m} * p.Nq + ${n}] = ${value}; }
    else if (${n} < p.Nq + p.Nkv) { k[${m} * p.Nkv + ${n} - p.Nq] = ${value}; }
    else { v[${m} * p.Nkv + ${n} - p.Nq - p.Nkv] = ${value}; }`,
      params.wgsl,
    ),
});

export function encodeNormQkv(
  ctx: GpuContext,
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  x: GpuTensor,
  norm: GpuWeight,
  eps: number,
  wqkv: GpuWeight,
  bqkv: GpuWeight | undefined,
  noBias: GpuBuf,
): void {
  const [wq, wk] = stackedParts('normQkv', wqkv, 3);
  if (bqkv) stackedParts('normQkv', bqkv, 3);
  const [N, K] = wqkv.shape;
  const M = x.size / K;
  const b = bqkv?.singleChunk('normQkv bias');
  for (const c of wqkv.chunks) {
    ctx.dispatch({
      kernel: normQkvKernel,
      dtypes: { weight: wqkv.dtype, bias: bqkv?.dtype ?? 'f32', norm: norm.dtype },
      buffers: [q.buf, k.buf, v.buf, x.buf, norm.single('normQkv'), c.buf, b?.buf ?? noBias],
      params: {
        M,
        N,
        K,
        n0: c.row0,
        rows: c.rows,
        wRow0: c.bufRow0,
        hasBias: b !== undefined,
        bias0: b?.bufRow0 ?? 0,
        eps,
        Nq: wq.shape[0],
        Nkv: wk.shape[0],
      },
      groups: Math.ceil(c.rows / NORM_MATVEC_ROWS),
    });
  }
}
