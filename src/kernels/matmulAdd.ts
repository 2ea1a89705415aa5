/**
 * A projection and its residual add: x (M, N) += y (M, K) · wᵀ [+ bias] (o_proj and down_proj).
 *
 * v1, on every backend, is the composition: matmul into a temporary, then addInPlace. On WebGPU the
 * fused variants are the matmul kernels themselves (matmul.ts) with the add in their epilogue: each
 * output is fl(x + fl(acc + bias)), exactly what the composition computes, for one dispatch and no
 * temporary (v2 the decode matvec, v3 the tiled prefill matmul).
 */
import type { Backend, Tensor, Weight } from './backend.ts';
import { scratchTensor } from './scratch.ts';

/** v1: matmul, then addInPlace, each the backend's own op (its chosen variant). */
export function matmulAddComposed(be: Backend, x: Tensor, y: Tensor, w: Weight, bias?: Weight): void {
  // Stryker disable next-line StringLiteral: a role only keys this op's temporary in kernels/scratch.ts; any other name the op does not use is the same
  const product = scratchTensor(be, 'product', x.shape); // (M, N)
  be.matmul(product, y, w, bias);
  be.addInPlace(x, product);
}
