/**
 * Kernel variants, numbered per op and per backend, in the spirit of llm.c's `./kernel N`.
 *
 * Every op of the Backend interface has, on each backend, a list of variants: v1 is the reference (on
 * the CPU, the plain loop every other variant and backend is tested against), higher numbers are
 * faster versions of the same computation, each with a one-line summary and, when it cannot run every
 * call, its constraints (e.g. "M ≤ 4") and the check that enforces them. The lists live in
 * cpu/variants.ts and webgpu/variants.ts; the backends, the tests (test/kernels/<op>.test.ts) and the
 * bench (bench/lib/kernels.ts) iterate them, so a new variant is one entry plus its code.
 *
 * Choosing. By default a backend runs each op's `auto` choice (v1 when an op has no rule). A caller
 * may force variants (`--kernel matmul=3`, the backends' `kernels` option, `forceKernels`): a forced
 * variant that a call's shapes violate is a RoseError('INPUT'), never a silent fallback.
 *
 * This file is pure: no Node, no GPU, so the browser bundle and the pool workers can load it.
 */
import type { Backend } from './backend.ts';
import { RoseError } from '../errors.ts';

/** The ops of the Backend interface, in the order of a forward pass (each fused op after the ops it fuses). */
export const OPS = [
  'embedding',
  'rmsnorm',
  'matmul',
  'normQkv',
  'rope',
  'kvWrite',
  'ropeKvWrite',
  'attention',
  'addInPlace',
  'matmulAdd',
  'swiglu',
  'normGateUpSwiglu',
  'gatherRows',
  'normMatmul',
  'contrastSoftmax',
] as const;
export type OpName = (typeof OPS)[number];

/**
 * The fused ops: each means a composition of the others (Backend), and its v1 on every backend is
 * that composition. `--kernel unfused` forces every one of them to v1: the forward pass as separate ops.
 */
export const FUSED_OPS = ['normQkv', 'ropeKvWrite', 'matmulAdd', 'normGateUpSwiglu', 'normMatmul'] as const satisfies readonly OpName[];
export type FusedOp = (typeof FUSED_OPS)[number];
/** An op's arguments and result, exactly as Backend declares them. */
export type OpArgs<O extends OpName> = Parameters<Backend[O]>;
export type OpResult<O extends OpName> = ReturnType<Backend[O]>;

/** What every variant of every op on every backend declares. */
export interface KernelVariant<O extends OpName> {
  /** 1, 2, 3, …: v1 is the reference. */
  readonly id: number;
  /** One line: what it does differently. */
  readonly summary: string;
  /** Human-readable constraints on the calls it takes, e.g. "M ≤ 4"; absent when it takes any call. */
  readonly constraints?: string;
  /** The constraint check: what about this call it cannot take (e.g. "M = 7"), or undefined when it can. */
  readonly rejects?: (...args: OpArgs<O>) => string | undefined;
}

/** One op's variants on one backend, and the automatic choice between them. */
export interface OpVariants<O extends OpName, V extends KernelVariant<O> = KernelVariant<O>> {
  readonly variants: readonly V[];
  /** The automatic choice; absent: v1. */
  readonly auto?: {
    readonly pick: (...args: OpArgs<O>) => number;
    /** The rule in words, e.g. "v2 for M ≤ 8, else v3". */
    readonly summary: string;
  };
}

/** What listings and checks read of a registry: ids, summaries, constraints, the auto rule's words. */
export interface VariantsInfo {
  readonly variants: readonly Pick<KernelVariant<OpName>, 'id' | 'summary' | 'constraints'>[];
  readonly auto?: { readonly summary: string };
}
export type RegistryInfo = { readonly [O in OpName]: VariantsInfo };

/** Forced variants by op (absent ops run their automatic choice). */
export type KernelChoice = Partial<Record<OpName, number>>;

const isOp = (s: string): s is OpName => (OPS as readonly string[]).includes(s);

/**
 * Parses `--kernel` values: each is `op=N`, several may share one value separated by commas
 * ("matmul=3,attention=1"), and the flag may repeat; `unfused` stands for every fused op =1 (the
 * composition of the separate ops). An unknown op or a malformed value is a RoseError('INPUT');
 * whether the backend has variant N is checked when the backend opens.
 */
export function parseKernelChoice(specs: string | readonly string[], previous: KernelChoice = {}): KernelChoice {
  const choice: KernelChoice = { ...previous };
  const set = (op: OpName, id: number) => {
    if (choice[op] !== undefined && choice[op] !== id)
      throw new RoseError('INPUT', `--kernel: ${op} is forced twice (v${choice[op]} and v${id})`, 'give each op once');
    choice[op] = id;
  };
  for (const part of (typeof specs === 'string' ? [specs] : specs).flatMap((s) => s.split(','))) {
    if (part.trim() === 'unfused') {
      for (const op of FUSED_OPS) set(op, 1);
      continue;
    }
    const m = /^\s*([A-Za-z]+)\s*=\s*v?(\d+)\s*$/.exec(part);
    if (!m) throw new RoseError('INPUT', `--kernel "${part}" is not op=N (or unfused)`, `e.g. --kernel matmul=3; ops: ${OPS.join(', ')}`);
    const [, op, id] = m;
    if (!isOp(op)) throw new RoseError('INPUT', `--kernel: there is no op "${op}"`, `ops: ${OPS.join(', ')}`);
    set(op, Number(id));
  }
  return choice;
}

/** "v1 summary; v2 summary (M ≤ 4)": an op's variants on one line, for errors and listings. */
export const listVariants = (ops: VariantsInfo): string =>
  ops.variants.map((v) => `v${v.id} ${v.summary}${v.constraints ? ` (${v.constraints})` : ''}`).join('; ');

/**
 * Checks a choice against a backend's registry: every forced op exists and has that variant there.
 * Returns the choice, copied.
 */
export function checkKernelChoice(registry: RegistryInfo, backend: string, choice: KernelChoice): KernelChoice {
  for (const [op, id] of Object.entries(choice)) {
    if (!isOp(op)) throw new RoseError('INPUT', `kernels: there is no op "${op}"`, `ops: ${OPS.join(', ')}`);
    if (id === undefined) continue;
    if (!registry[op].variants.some((v) => v.id === id))
      throw new RoseError('INPUT', `${op} has no variant ${id} on the ${backend} backend`, `its variants: ${listVariants(registry[op])}`);
  }
  return { ...choice };
}

/**
 * The variant that runs this call: the forced one, else the automatic choice. Either way the variant's
 * constraints are checked against the call: a forced variant that cannot take it is the caller's
 * error (INPUT); an automatic choice that cannot is a limit of this backend (LIMIT).
 */
export function chooseVariant<O extends OpName, V extends KernelVariant<O>>(
  op: O,
  backend: string,
  ops: OpVariants<O, V>,
  forced: number | undefined,
  args: OpArgs<O>,
): V {
  const id = forced ?? ops.auto?.pick(...args) ?? 1;
  const variant = ops.variants[id - 1]; // numbered 1, 2, … in order (test/kernels/registry.test.ts)
  if (variant?.id !== id)
    throw new RoseError('INPUT', `${op} has no variant ${id} on the ${backend} backend`, `its variants: ${listVariants(ops)}`);
  const why = variant.rejects?.(...args);
  if (why === undefined) return variant;
  if (forced !== undefined)
    throw new RoseError(
      'INPUT',
      `${op} v${id} is forced on the ${backend} backend, but it takes only ${variant.constraints} and this call has ${why}`,
      `force another variant (${listVariants(ops)}) or let the backend choose (no --kernel ${op}=…)`,
    );
  throw new RoseError('LIMIT', `${op}: ${why} is beyond the ${backend} backend (v${id} takes ${variant.constraints})`);
}

/** How a backend runs its ops, for its description: "matmul auto (v2 for M ≤ 8, else v3), attention v1". */
export function describeChoice(registry: RegistryInfo, choice: KernelChoice, always: readonly OpName[] = []): string {
  return OPS.filter((op) => choice[op] !== undefined || always.includes(op))
    .map((op) => {
      const id = choice[op];
      const auto = registry[op].auto;
      return id !== undefined ? `${op} v${id}` : `${op} auto${auto ? ` (${auto.summary})` : ''}`;
    })
    .join(', ');
}
