/**
 * The fused ops' v1, on every backend: each is the composition of separate ops that Backend says it
 * means, called through the backend itself, so those ops' own variants (forced or automatic) apply.
 * It is the unfused forward pass, kept selectable (`--kernel unfused`) and tested beside the fused
 * kernels; the CPU backend has nothing else (fusing saves dispatches, which it does not have).
 */
import type { Backend } from './backend.ts';
import { matmulAddComposed } from './matmulAdd.ts';
import { normGateUpSwigluComposed } from './normGateUpSwiglu.ts';
import { normMatmulComposed } from './normMatmul.ts';
import { normQkvComposed } from './normQkv.ts';
import type { FusedOp, OpArgs, OpResult } from './registry.ts';
import { ropeKvWriteComposed } from './ropeKvWrite.ts';

export interface ComposedVariant<O extends FusedOp> {
  readonly summary: string;
  readonly run: (be: Backend, ...args: OpArgs<O>) => OpResult<O>;
}

export const composed: { readonly [O in FusedOp]: ComposedVariant<O> } = {
  normQkv: { summary: 'unfused: rmsnorm, then a matmul per part of [wq; wk; wv]', run: normQkvComposed },
  ropeKvWrite: { summary: 'unfused: rope on q, rope on k, kvWrite of k, kvWrite of v', run: ropeKvWriteComposed },
  matmulAdd: { summary: 'unfused: matmul into a temporary, then addInPlace', run: matmulAddComposed },
  normGateUpSwiglu: { summary: 'unfused: rmsnorm, matmul gate, matmul up, swiglu', run: normGateUpSwigluComposed },
  normMatmul: { summary: 'unfused: rmsnorm, then matmul', run: normMatmulComposed },
};
