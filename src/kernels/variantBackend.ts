/**
 * What the CPU and WebGPU backends share: every op of the Backend interface runs the variant that
 * registry.ts chooses for the call from the backend's table (cpu/variants.ts, webgpu/variants.ts),
 * forced or automatic. A backend supplies its table and the context its variants run in (the CPU
 * backend itself; WebGPU's recording context and fixed buffers); memory and lifetime are its own.
 */
import { RoseError } from '../errors.ts';
import type { ContrastParams, ContrastResult, Tensor, Weight } from './backend.ts';
import {
  checkKernelChoice,
  chooseVariant,
  type KernelChoice,
  type KernelVariant,
  type OpArgs,
  type OpName,
  type OpResult,
  type OpVariants,
} from './registry.ts';

/** A variant that runs in context C: the CPU backend, or WebGPU's encoder. */
export interface RunnableVariant<O extends OpName, C> extends KernelVariant<O> {
  readonly run: (context: C, ...args: OpArgs<O>) => OpResult<O>;
}
/** A backend's table: every op's variants, runnable in its context. */
export type VariantTable<C> = { readonly [O in OpName]: OpVariants<O, RunnableVariant<O, C>> };

export abstract class VariantBackend<C> {
  abstract readonly name: 'cpu' | 'webgpu';
  /** Every op's variants on this backend: what the tests and the bench iterate. */
  abstract readonly variants: VariantTable<C>;
  private forced: KernelChoice = {};

  /** What this backend's variants run in. */
  protected abstract variantContext(): C;

  /** The variants forced on this backend, by op; {} = every op's automatic choice. */
  get kernels(): KernelChoice {
    return { ...this.forced };
  }
  /** Forces variants from now on, replacing the previous choice; RoseError('INPUT') for one this backend lacks. */
  forceKernels(choice: KernelChoice): void {
    this.forced = checkKernelChoice(this.variants, this.name, choice);
  }

  private run<O extends OpName>(op: O, ...args: OpArgs<O>): OpResult<O> {
    return chooseVariant(op, this.name, this.variants[op], this.forced[op], args).run(this.variantContext(), ...args);
  }

  embedding(out: Tensor, table: Weight, ids: Int32Array): void {
    this.run('embedding', out, table, ids);
  }
  rmsnorm(out: Tensor, x: Tensor, weight: Weight, eps: number): void {
    this.run('rmsnorm', out, x, weight, eps);
  }
  matmul(out: Tensor, x: Tensor, weight: Weight, bias?: Weight): void {
    this.run('matmul', out, x, weight, bias);
  }
  rope(x: Tensor, table: Tensor, positions: Int32Array, heads: number): void {
    this.run('rope', x, table, positions, heads);
  }
  kvWrite(cache: Tensor, src: Tensor, slot0: number): void {
    this.run('kvWrite', cache, src, slot0);
  }
  attention(out: Tensor, q: Tensor, kCache: Tensor, vCache: Tensor, padLen: Int32Array, slot0: number): void {
    this.run('attention', out, q, kCache, vCache, padLen, slot0);
  }
  swiglu(out: Tensor, gate: Tensor, up: Tensor): void {
    this.run('swiglu', out, gate, up);
  }
  addInPlace(x: Tensor, y: Tensor): void {
    this.run('addInPlace', x, y);
  }
  gatherRows(out: Tensor, x: Tensor, rows: Int32Array): void {
    this.run('gatherRows', out, x, rows);
  }
  normQkv(q: Tensor, k: Tensor, v: Tensor, x: Tensor, norm: Weight, eps: number, wqkv: Weight, bqkv?: Weight): void {
    this.run('normQkv', q, k, v, x, norm, eps, wqkv, bqkv);
  }
  ropeKvWrite(q: Tensor, k: Tensor, v: Tensor, kCache: Tensor, vCache: Tensor, table: Tensor, positions: Int32Array, slot0: number): void {
    this.run('ropeKvWrite', q, k, v, kCache, vCache, table, positions, slot0);
  }
  matmulAdd(x: Tensor, y: Tensor, weight: Weight, bias?: Weight): void {
    this.run('matmulAdd', x, y, weight, bias);
  }
  normGateUpSwiglu(out: Tensor, x: Tensor, norm: Weight, eps: number, wGate: Weight, wUp: Weight, bGate?: Weight, bUp?: Weight): void {
    this.run('normGateUpSwiglu', out, x, norm, eps, wGate, wUp, bGate, bUp);
  }
  normMatmul(out: Tensor, x: Tensor, norm: Weight, eps: number, weight: Weight, bias?: Weight): void {
    this.run('normMatmul', out, x, norm, eps, weight, bias);
  }
  async contrastSoftmax(probs: Tensor, logits: Tensor, params: ContrastParams): Promise<ContrastResult> {
    if (!(params.temperature > 0)) throw new RoseError('INPUT', `temperature must be > 0, got ${params.temperature}`);
    return this.run('contrastSoftmax', probs, logits, params);
  }
}
