/**
 * Temporary tensors for the composed variants (v1) of the fused ops: rmsnorm's output before the
 * projections, the gate and up activations before SwiGLU, a product before its residual add. The
 * model never sees them. They are held per backend and per role, by shape, under the same policy as
 * the model's own activations (KEEP_SCRATCH_MAX_ROWS), so decode steps allocate nothing and a
 * prefill's temporaries do not stay resident.
 */
import type { Backend, Tensor } from './backend.ts';

/**
 * The scratch-cache policy. A decode step repeats one small shape every step (M = B: one new token per
 * row, a row per prompt), so the buffers of a call of at most this many rows are kept for the
 * backend's (or the Llama's) lifetime, and a step allocates nothing; there are few such shapes, and
 * each is small. A call of more rows is a prefill, whose shape follows the prompt and rarely recurs:
 * its buffers (the largest is M × intermediate floats) are freed as soon as another shape needs
 * buffers, so a long prompt's activations do not stay resident beside the weights. 8 keeps ROSE's
 * decode with up to 7 reverse prompts (a batch of 1 + 7) on the kept side.
 */
export const KEEP_SCRATCH_MAX_ROWS = 8;

const held = new WeakMap<Backend, Map<string, Map<string, Tensor>>>();

/** A tensor of `shape` (rows first) for `role` on `be`: its contents are whatever the last user left. */
export function scratchTensor(be: Backend, role: string, shape: readonly number[]): Tensor {
  let roles = held.get(be);
  if (!roles) held.set(be, (roles = new Map()));
  let byShape = roles.get(role);
  if (!byShape) roles.set(role, (byShape = new Map()));
  const key = shape.join('x');
  let t = byShape.get(key);
  if (!t) {
    for (const [k, old] of byShape) {
      if (old.shape[0] <= KEEP_SCRATCH_MAX_ROWS) continue;
      be.free(old); // safe on WebGPU while recorded work still uses it: freed after the next submit
      byShape.delete(k);
    }
    t = be.alloc(shape);
    byShape.set(key, t);
  }
  return t;
}
