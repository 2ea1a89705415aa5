/**
 * `rose diff`'s comparison: two dumps (src/oracle/dumps.ts), tensor by tensor and position by
 * position, and the first point where they part.
 *
 * Tensor names say what a tensor is (the layout of `rose logits --hidden-states`):
 *   hidden.<row>.<k>  the residual stream of a row after the embedding (k = 0) or after layer k
 *   normed.<row>      the final-norm output
 *   logits.<row>      the logits
 * Every other name is read as logits of an unnamed row. The last dimension is the feature axis
 * (hidden or vocab); every leading index is a position. All arithmetic is in float64.
 *
 * The first divergence is the earliest stage in the forward pass (layer 0 … L, then the final norm,
 * then the logits) where any row exceeds the tolerance, then the lowest row, then the first position
 * of that row where max |Δ| > tolerance: where a backend's numbers leave the reference, not where the
 * error they carry is largest.
 */
import { RoseError } from '../errors.ts';
import { checkRawShape, type Dump, type DumpTensor } from './dumps.ts';

export type TensorKind = 'hidden' | 'logits';

/** Where a tensor sits in the forward pass, from its name. */
export interface Stage {
  kind: TensorKind;
  row?: number;
  /** k of hidden.<row>.<k>. */
  layer?: number;
  /** Sort key along the forward pass: k for hidden states, then the final norm, then logits. */
  order: number;
  /** For the verdict: "layer 2", "final norm", "logits" (or the tensor's name when it has no row). */
  label: string;
}

export function stageOf(name: string): Stage {
  let m = /^hidden\.(\d+)\.(\d+)$/.exec(name);
  if (m) return { kind: 'hidden', row: Number(m[1]), layer: Number(m[2]), order: Number(m[2]), label: `layer ${Number(m[2])}` };
  m = /^normed\.(\d+)$/.exec(name);
  if (m) return { kind: 'hidden', row: Number(m[1]), order: 1e9, label: 'final norm' };
  m = /^logits\.(\d+)$/.exec(name);
  if (m) return { kind: 'logits', row: Number(m[1]), order: 2e9, label: 'logits' };
  return { kind: 'logits', order: 3e9, label: name === 'logits' ? 'logits' : `"${name}"` };
}

export interface PositionDiff {
  position: number;
  /** max |ref − other| over the position's values, and the feature index where it is. */
  maxAbs: number;
  maxAbsAt: number;
  /** max |ref| over the position's values. */
  maxRef: number;
  /** maxAbs / maxRef: the error relative to the position's scale (element-wise ratios explode near 0). */
  rel: number;
  /** Logits only. */
  argmaxRef?: number;
  argmaxOther?: number;
  /** How many of ref's 5 largest are among other's 5 largest (ties: lowest index first). */
  top5?: number;
  /** KL(p_ref ‖ p_other) with p = softmax(logits), in nats. */
  kl?: number;
}

export interface TensorDiff {
  /** The reference's name for it (OTHER's may differ when OTHER is one single-tensor file). */
  name: string;
  otherName: string;
  stage: Stage;
  /** The shape compared, leading 1s dropped. */
  shape: number[];
  positions: PositionDiff[];
  maxAbs: number;
  maxAbsPosition: number;
  maxRef: number;
  maxRel: number;
  /** Logits only: positions whose argmax agrees, the worst top-5 overlap, the largest KL. */
  argmaxAgree?: number;
  top5Min?: number;
  klMax?: number;
  /** The first position whose max |Δ| exceeds the tolerance, or −1. */
  firstOver: number;
}

export interface DiffReport {
  tolerance: number;
  /** Row by row, each along the forward pass. */
  tensors: TensorDiff[];
  onlyInRef: string[];
  onlyInOther: string[];
  /** Undefined when every tensor is within the tolerance. */
  first?: { tensor: TensorDiff; position: number };
}

export interface DiffOptions {
  tolerance: number;
  /** Compare a single-tensor OTHER (or REF) file with this tensor of the other side. */
  tensor?: string;
}

interface Pair {
  ref: DumpTensor;
  other: DumpTensor;
}

export function diffDumps(ref: Dump, other: Dump, opts: DiffOptions): DiffReport {
  const { pairs, onlyInRef, onlyInOther } = pairTensors(ref, other, opts.tensor);
  // Along the forward pass first, so that a NaN is reported where it first appears.
  const byStage = (a: Pair, b: Pair) => {
    const sa = stageOf(a.ref.name);
    const sb = stageOf(b.ref.name);
    return sa.order - sb.order || (sa.row ?? -1) - (sb.row ?? -1) || a.ref.name.localeCompare(b.ref.name);
  };
  const tensors = pairs.sort(byStage).map((p) => compareTensors(p, ref.path, other.path, opts.tolerance));

  const diverged = tensors.filter((t) => t.firstOver >= 0); // already in stage, then row order
  const first = diverged.length ? { tensor: diverged[0], position: diverged[0].firstOver } : undefined;
  const byRow = (a: TensorDiff, b: TensorDiff) =>
    (a.stage.row ?? -1) - (b.stage.row ?? -1) || a.stage.order - b.stage.order || a.name.localeCompare(b.name);
  return { tolerance: opts.tolerance, tensors: [...tensors].sort(byRow), onlyInRef, onlyInOther, first };
}

/** Which tensor of REF goes with which of OTHER: by name, or a single-tensor file with the one it names. */
function pairTensors(ref: Dump, other: Dump, tensor?: string): { pairs: Pair[]; onlyInRef: string[]; onlyInOther: string[] } {
  const list = (d: Dump) => {
    const names = [...d.tensors.keys()];
    return names.length > 12 ? `${names.slice(0, 12).join(', ')}, … (${names.length})` : names.join(', ');
  };
  const pick = (d: Dump, side: string, name: string) => {
    const t = d.tensors.get(name);
    if (!t) throw new RoseError('INPUT', `${side} ${d.path} has no tensor "${name}"`, `it holds ${list(d)}`);
    return t;
  };
  const only = (d: Dump) => [...d.tensors.values()][0];

  if (ref.single && other.single) return { pairs: [{ ref: only(ref), other: only(other) }], onlyInRef: [], onlyInOther: [] };
  if (ref.single || other.single) {
    // One file of one tensor against many: the file's name (or --tensor) says which.
    const [one, many, manySide] = ref.single ? [ref, other, 'OTHER'] : [other, ref, 'REF'];
    const t = only(one);
    const name = tensor ?? (many.tensors.has(t.name) ? t.name : many.tensors.size === 1 ? only(many).name : undefined);
    if (name === undefined) {
      throw new RoseError(
        'INPUT',
        `${one === ref ? 'REF' : 'OTHER'} ${one.path} holds one tensor and ${manySide} ${many.path} holds ${many.tensors.size}; which one is it?`,
        `name the file after the tensor (e.g. ${[...many.tensors.keys()][0]}.npy) or pass --tensor NAME; ${manySide} holds ${list(many)}`,
      );
    }
    const m = pick(many, manySide, name);
    return { pairs: [ref.single ? { ref: t, other: m } : { ref: m, other: t }], onlyInRef: [], onlyInOther: [] };
  }
  let names = [...ref.tensors.keys()].filter((n) => other.tensors.has(n));
  if (tensor !== undefined) {
    pick(ref, 'REF', tensor);
    pick(other, 'OTHER', tensor);
    names = [tensor];
  }
  if (names.length === 0) {
    throw new RoseError(
      'INPUT',
      `REF ${ref.path} and OTHER ${other.path} have no tensor name in common`,
      `REF holds ${list(ref)}; OTHER holds ${list(other)}. Name OTHER's tensors as REF's (logits.<row>, hidden.<row>.<k>, normed.<row>)`,
    );
  }
  return {
    pairs: names.map((n) => ({ ref: ref.tensors.get(n)!, other: other.tensors.get(n)! })),
    onlyInRef: tensor === undefined ? [...ref.tensors.keys()].filter((n) => !other.tensors.has(n)) : [],
    onlyInOther: tensor === undefined ? [...other.tensors.keys()].filter((n) => !ref.tensors.has(n)) : [],
  };
}

/** Drops leading dimensions of size 1 (a batch of one): [1, T, V] and [T, V] compare. */
function squeeze(shape: readonly number[]): number[] {
  let i = 0;
  while (i < shape.length - 1 && shape[i] === 1) i++;
  return shape.slice(i);
}

const showShape = (s: readonly number[]) => `[${s.join(', ')}]`;

function compareTensors(pair: Pair, refPath: string, otherPath: string, tolerance: number): TensorDiff {
  const { ref, other } = pair;
  const what = ref.name === other.name ? `"${ref.name}"` : `"${ref.name}" (OTHER: "${other.name}")`;
  if (!ref.shape && !other.shape) {
    throw new RoseError(
      'INPUT',
      `${what}: REF and OTHER are both raw f32 files, so neither says its shape`,
      'pass --shape T,V (positions, then features)',
    );
  }
  if (!ref.shape) checkRawShape(ref.file, 'REF', ref.elements, other.shape!, `OTHER's ${other.name}`);
  if (!other.shape) checkRawShape(other.file, 'OTHER', other.elements, ref.shape!, `REF's ${ref.name}`);
  const refShape = ref.shape ?? other.shape!;
  const otherShape = other.shape ?? ref.shape!;
  const shape = squeeze(refShape);
  if (showShape(shape) !== showShape(squeeze(otherShape))) {
    throw new RoseError(
      'INPUT',
      `shape mismatch: ${what} is ${showShape(refShape)} in REF and ${showShape(otherShape)} in OTHER`,
      'both must hold the same positions (every real position of the row, pads dropped, as rose logits writes) and the same features',
    );
  }
  const a = ref.read(refShape);
  const b = other.read(otherShape);
  const width = shape.length === 0 ? 1 : shape[shape.length - 1];
  const count = width === 0 ? 0 : a.length / width;
  checkFinite(a, width, 'REF', refPath, ref.name);
  checkFinite(b, width, 'OTHER', otherPath, other.name);

  const stage = stageOf(ref.name);
  const positions: PositionDiff[] = [];
  for (let p = 0; p < count; p++) positions.push(comparePosition(a, b, p, width, stage.kind === 'logits'));
  // reduce, not Math.max(...): a long sequence would overflow the argument list.
  const max = (f: (q: PositionDiff) => number) => positions.reduce((m, q) => Math.max(m, f(q)), 0);
  const worst = positions.reduce<PositionDiff | undefined>((w, q) => (!w || q.maxAbs > w.maxAbs ? q : w), undefined);
  const logits = stage.kind === 'logits' && positions.length > 0;
  return {
    name: ref.name,
    otherName: other.name,
    stage,
    shape,
    positions,
    maxAbs: worst?.maxAbs ?? 0,
    maxAbsPosition: worst?.position ?? -1,
    maxRef: max((q) => q.maxRef),
    maxRel: max((q) => q.rel),
    argmaxAgree: logits ? positions.filter((q) => q.argmaxRef === q.argmaxOther).length : undefined,
    top5Min: logits ? positions.reduce((m, q) => Math.min(m, q.top5!), 5) : undefined,
    klMax: logits ? max((q) => q.kl!) : undefined,
    firstOver: positions.findIndex((q) => q.maxAbs > tolerance),
  };
}

/** NaN or ±Inf make a distance meaningless: name the first one (position and feature) and stop. */
function checkFinite(x: Float32Array | Float64Array, width: number, side: string, path: string, name: string): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      const stage = stageOf(name);
      const where = stage.row === undefined ? stage.label : `row ${stage.row}, ${stage.label}`;
      throw new RoseError(
        'NUMERIC',
        `${side} ${path}: ${name} holds ${x[i]} at position ${Math.floor(i / width)} (feature ${i % width}), so it cannot be compared`,
        `this is the first non-finite value of ${side} along the forward pass: ${where}, position ${Math.floor(i / width)}; fix it there first`,
      );
    }
  }
}

function comparePosition(a: ArrayLike<number>, b: ArrayLike<number>, p: number, width: number, logits: boolean): PositionDiff {
  const base = p * width;
  let maxAbs = 0;
  let maxAbsAt = 0;
  let maxRef = 0;
  for (let i = 0; i < width; i++) {
    const d = Math.abs(a[base + i] - b[base + i]);
    if (d > maxAbs) {
      maxAbs = d;
      maxAbsAt = i;
    }
    maxRef = Math.max(maxRef, Math.abs(a[base + i]));
  }
  const rel = maxRef > 0 ? maxAbs / maxRef : maxAbs > 0 ? Number.POSITIVE_INFINITY : 0;
  const out: PositionDiff = { position: p, maxAbs, maxAbsAt, maxRef, rel };
  if (!logits) return out;
  const topA = topK(a, base, width, 5);
  const topB = topK(b, base, width, 5);
  out.argmaxRef = topA[0];
  out.argmaxOther = topB[0];
  out.top5 = topA.filter((i) => topB.includes(i)).length;
  out.kl = klDivergence(a, b, base, width);
  return out;
}

/** Indices of the k largest values, largest first; ties go to the lowest index (as torch.topk on CPU). */
export function topK(x: ArrayLike<number>, base: number, width: number, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < width; i++) {
    const v = x[base + i];
    if (best.length === k && !(v > x[base + best[k - 1]])) continue;
    let at = best.length; // after every value ≥ v, so an equal value keeps its lower index first
    while (at > 0 && v > x[base + best[at - 1]]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** KL(softmax(a) ‖ softmax(b)) over one position, in nats, with both log-sum-exps in float64. */
export function klDivergence(a: ArrayLike<number>, b: ArrayLike<number>, base: number, width: number): number {
  const lse = (x: ArrayLike<number>) => {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < width; i++) max = Math.max(max, x[base + i]);
    let sum = 0;
    for (let i = 0; i < width; i++) sum += Math.exp(x[base + i] - max);
    return max + Math.log(sum);
  };
  const la = lse(a);
  const lb = lse(b);
  let kl = 0;
  for (let i = 0; i < width; i++) {
    const logP = a[base + i] - la;
    kl += Math.exp(logP) * (logP - (b[base + i] - lb));
  }
  // KL ≥ 0 exactly; a float64 sum of terms of both signs can land a few ulp below 0 when p ≈ q.
  return Math.max(0, kl);
}
