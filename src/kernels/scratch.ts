/**
 * Temporary tensors for the composed variants (v1) of the fused ops: rmsnorm's output before the
 * projections, the gate and up activations before SwiGLU, a product before its residual add. The
 * model never sees them. They are held per backend and per role and reused while a shape repeats,
 * so decode steps allocate nothing; a role keeps its few most recent shapes (decoding alternates a
 * plain batch of one with ROSE's two rows), and an older one is freed.
 */
import type { Backend, Tensor } from './backend.ts';

/** Shapes kept per role: a prefill's, and the decode steps' one or two batch sizes. */
const KEEP = 3;
const held = new WeakMap<Backend, Map<string, Map<string, Tensor>>>();

/** A tensor of `shape` for `role` on `be`: its contents are whatever the last user left. */
export function scratchTensor(be: Backend, role: string, shape: readonly number[]): Tensor {
  let roles = held.get(be);
  if (!roles) held.set(be, (roles = new Map()));
  let byShape = roles.get(role);
  if (!byShape) roles.set(role, (byShape = new Map()));
  const key = shape.join('x');
  let t = byShape.get(key);
  if (t)
    byShape.delete(key); // re-inserted below: the map's order is the order of last use
  else {
    t = be.alloc(shape);
    if (byShape.size >= KEEP) {
      const [oldest, old] = byShape.entries().next().value as [string, Tensor];
      be.free(old); // safe on WebGPU while recorded work still uses it: freed after the next submit
      byShape.delete(oldest);
    }
  }
  byShape.set(key, t);
  return t;
}
