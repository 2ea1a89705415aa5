/**
 * Hidden states for `rose logits --hidden-states`, copied out of the real forward pass (on whichever
 * backend runs it) through Llama's StageObserver: nothing here recomputes a layer.
 *
 * Layout, per row b and every real position of that row (pads dropped), all F32:
 *   hidden.<b>.<k>  [T_b, hidden]  the residual stream after the embedding (k = 0) and after layer k
 *                                  (k = 1..L: the output of transformers' model.layers[k − 1])
 *   normed.<b>      [T_b, hidden]  the final RMSNorm's output, the input of lm_head
 * It is the layout of the shared fixtures' hidden-states.safetensors. transformers'
 * `output_hidden_states` is a tuple of L + 1 entries: entries 0..L−1 are hidden.<b>.0..L−1, and
 * entry L is normed.<b> (transformers applies the final norm to its last entry), not hidden.<b>.L.
 */
import { RoseError } from '../errors.ts';
import type { Backend, Tensor } from '../kernels/backend.ts';
import type { StageObserver } from '../model/llama.ts';
import type { TensorToWrite } from '../model/safetensors.ts';

/** Stages k with from ≤ k ≤ to are kept (to = Infinity: up to L); normed.<b> is kept when `to` is the last layer L. */
export interface LayerRange {
  readonly from: number;
  readonly to: number;
}

type Stage = number | 'normed';

export class HiddenStateCapture {
  private readonly copies = new Map<Stage, Tensor>(); // stage → (M, D) or (R, D), device side
  private readonly range: LayerRange;

  /** `numLayers` is L; `range` defaults to every stage, 0..L and normed. */
  constructor(
    private readonly backend: Backend,
    private readonly numLayers: number,
    range?: LayerRange,
  ) {
    // An open upper end ("2..", parsed as Infinity) means the last layer.
    this.range = { from: range?.from ?? 0, to: range === undefined || range.to === Number.POSITIVE_INFINITY ? numLayers : range.to };
    const { from, to } = this.range;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= numLayers)) {
      throw new RoseError(
        'INPUT',
        `--layers ${from}..${to} is outside this model's stages 0..${numLayers}`,
        `0 is the embeddings and ${numLayers} the last layer's output (with the final-norm output); pick a range within 0..${numLayers}`,
      );
    }
  }

  /** What is kept, for a summary line: "hidden.<row>.0..4 and normed.<row> (L = 4)". */
  describe(): string {
    const { from, to } = this.range;
    const normed = to === this.numLayers ? ' and normed.<row>' : '';
    return `hidden.<row>.${from === to ? from : `${from}..${to}`}${normed} (L = ${this.numLayers})`;
  }

  /** Pass this to Llama.prefill/forward. Each kept stage is copied on the device, in queue order. */
  readonly observe: StageObserver = (stage, x) => {
    const keep = stage === 'normed' ? this.range.to === this.numLayers : this.range.from <= stage && stage <= this.range.to;
    if (!keep) return;
    const rows = x.shape[0];
    const copy = this.backend.alloc(x.shape); // (M, D)
    this.backend.gatherRows(
      copy,
      x,
      Int32Array.from({ length: rows }, (_, i) => i),
    ); // a plain copy: rows 0..M−1
    const old = this.copies.get(stage);
    if (old) this.backend.free(old);
    this.copies.set(stage, copy);
  };

  /**
   * The captured stages as tensors, row by row (hidden.<b>.<k> in k order, then normed.<b>), each
   * row's real positions only. `rows` are the token rows of the prefill and T their padded length.
   * Frees the device copies.
   */
  async tensors(rows: readonly (readonly number[])[], T: number): Promise<TensorToWrite[]> {
    const host = new Map<Stage, { data: Float32Array; dim: number }>();
    try {
      for (const [stage, copy] of this.copies) {
        if (copy.shape[0] !== rows.length * T) {
          throw new Error(`stage ${stage} holds ${copy.shape[0]} positions, not ${rows.length}×${T}: capture needs allPositions`);
        }
        host.set(stage, { data: await this.backend.read(copy), dim: copy.shape[1] }); // (B·T, D)
      }
    } finally {
      for (const copy of this.copies.values()) this.backend.free(copy);
      this.copies.clear();
    }
    const out: TensorToWrite[] = [];
    rows.forEach((row, b) => {
      const stages: Stage[] = [...host.keys()].sort((x, y) => (x === 'normed' ? 1 : y === 'normed' ? -1 : x - y));
      for (const stage of stages) {
        const { data, dim } = host.get(stage)!;
        const real = data.slice((b * T + T - row.length) * dim, (b + 1) * T * dim); // (T_b, D): the row's pads dropped
        const name = stage === 'normed' ? `normed.${b}` : `hidden.${b}.${stage}`;
        out.push({ name, dtype: 'F32', shape: [row.length, dim], data: new Uint8Array(real.buffer) });
      }
    });
    return out;
  }
}
