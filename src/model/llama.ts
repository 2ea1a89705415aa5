/**
 * The Llama forward pass, top to bottom, on any Backend.
 *
 * Batching. A call runs B rows (sequences) of T new tokens each, as one (B·T, D) activation matrix,
 * so every weight is read once for all rows: ROSE's positive and reverse prompts are one batch of
 * two. Rows of different lengths are LEFT-padded to a common length, as transformers' generate()
 * does: row b's first padLen[b] slots are pads, its first real token sits at position 0, and slot s
 * holds position s − padLen[b]. Attention skips pad slots, so a row's logits equal those of the row
 * run alone, and new tokens of every row land in the same slot (one scalar `length` per cache).
 *
 * Shapes: B batch rows, T new tokens per row, M = B·T, D hidden, F intermediate, V vocab,
 * H query heads, Hkv key/value heads, hd head_dim, S cache capacity (slots).
 *
 * Each backend call below has its math on the line above it and the kernel file that implements it
 * (src/kernels/<op>.ts: the CPU twin, the WGSL and the host wrapper side by side). The exact Hugging
 * Face semantics this reproduces, and the tolerances and bugs the tests hold it to, are in
 * docs/llama-semantics.md.
 *
 * Fused ops. A layer is six calls: a norm read through by the projections that follow it, RoPE with
 * the KV-cache write, the residual adds in the epilogues of o_proj and down_proj. On WebGPU each is one
 * dispatch in decode (a GPU step is bound by its dispatches, not its bytes); every fused op's v1 is
 * the composition of the separate ops it stands for (kernels/composed.ts), which `--kernel unfused`
 * brings back and the CPU backend always runs.
 */
import type { Backend, Tensor } from '../kernels/backend.ts';
import { KEEP_SCRATCH_MAX_ROWS } from '../kernels/scratch.ts';
import { RoseError } from '../errors.ts';
import type { LlamaConfig } from './config.ts';
import { ropeInvFreq, ropeTable } from './rope.ts';
import type { LlamaWeights } from './weights.ts';

/** The per-conversation state: one K and one V cache per layer, and where each row's pads end. */
export interface KvCache {
  readonly batch: number; // B
  readonly capacity: number; // S
  readonly k: Tensor[]; // per layer (B, S, Hkv, hd)
  readonly v: Tensor[]; // per layer (B, S, Hkv, hd)
  readonly padLen: Int32Array; // (B) leading pad slots of each row, fixed by the first call
  readonly rope: Tensor; // (S, hd) cos|sin per position: a position never exceeds its slot
  length: number; // slots filled so far, the same for every row
}

/**
 * Sees the residual stream x (M, D) after the embedding (stage 0) and after each layer (1..L), then
 * the final-norm output (R, D) ('normed'), at the moment each is made. It must copy what it keeps:
 * the next op overwrites x. `rose logits --hidden-states` uses it (src/oracle/hiddenStates.ts).
 */
export type StageObserver = (stage: number | 'normed', x: Tensor) => void;

/** The call shape a Scratch serves: M = B·T token rows, R rows of logits, B batch rows (lastRows depends on B). */
interface ScratchShape {
  readonly M: number;
  readonly R: number;
  readonly B: number;
}

// The scratch-cache policy, KEEP_SCRATCH_MAX_ROWS, is shared with the fused ops' temporaries (kernels/scratch.ts).

/** Activation buffers for one ScratchShape, reused across calls so decode steps allocate nothing. */
interface Scratch {
  x: Tensor; // (M, D)      the residual stream
  q: Tensor; // (M, H·hd)
  k: Tensor; // (M, Hkv·hd)
  v: Tensor; // (M, Hkv·hd)
  att: Tensor; // (M, H·hd)
  act: Tensor; // (M, F)    silu(gate) ⊙ up, the MLP's activation
  rows: Tensor; // (R, D)   positions whose logits are wanted
  rowsNorm: Tensor; // (R, D) their final norm, made only for an observer (the head reads rows through the norm)
  logits: Tensor; // (R, V)
  positions: Int32Array; // (B·T) host-side: rewritten each call, never reallocated
  lastRows: Int32Array; // (B)   index of each row's last token in (B·T)
}

export class Llama {
  /** By shape, as `${M},${R},${B}` (a Map compares object keys by identity); see KEEP_SCRATCH_MAX_ROWS. */
  private readonly scratch = new Map<string, { shape: ScratchShape; buffers: Scratch }>();
  private readonly invFreq: Float32Array;

  constructor(
    readonly config: LlamaConfig,
    readonly weights: LlamaWeights,
    readonly backend: Backend,
  ) {
    this.invFreq = ropeInvFreq(config);
  }

  /** A KV cache for `batch` rows of up to `capacity` tokens (pads included). */
  newKvCache(batch: number, capacity: number): KvCache {
    const c = this.config;
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RoseError('INPUT', `KV-cache capacity must be a positive integer, got ${capacity}`);
    if (capacity > c.maxPositionEmbeddings) {
      throw new RoseError(
        'LIMIT',
        `a context of ${capacity} tokens exceeds this model's max_position_embeddings (${c.maxPositionEmbeddings})`,
        'shorten the prompt or generate fewer new tokens',
      );
    }
    const shape = [batch, capacity, c.numKeyValueHeads, c.headDim];
    const rope = this.backend.alloc([capacity, c.headDim]);
    this.backend.write(rope, ropeTable(this.invFreq, capacity));
    return {
      batch,
      capacity,
      k: Array.from({ length: c.numHiddenLayers }, () => this.backend.alloc(shape)),
      v: Array.from({ length: c.numHiddenLayers }, () => this.backend.alloc(shape)),
      padLen: new Int32Array(batch),
      rope,
      length: 0,
    };
  }

  /**
   * Runs T new tokens for every row and returns logits (R, V): R = B·T rows (every position,
   * pads included as zeros-in/garbage-out) when `allPositions`, else R = B (each row's last token).
   * The returned tensor is scratch: it is overwritten by the next call of the same shape.
   * `observe`, when given, sees the residual stream after each stage (see StageObserver).
   */
  forward(cache: KvCache, tokens: Int32Array /* (B, T) */, allPositions = false, observe?: StageObserver): Tensor {
    const c = this.config;
    const { backend: be, weights: w } = this;
    const B = cache.batch;
    const T = tokens.length / B;
    const slot0 = cache.length;
    this.checkCall(cache, tokens, T);

    const M = B * T;
    const R = allPositions ? M : B; // rows of logits: every position, or each row's last token
    const s = this.scratchFor({ M, R, B });
    const positions = s.positions; // (B, T) position of each token; pads get 0 (never read)
    // Stryker disable next-line EqualityOperator: b = B writes past the end of positions (a typed array ignores it)
    for (let b = 0; b < B; b++) {
      // Stryker disable next-line EqualityOperator: t = T writes row b + 1's first position, which that row then sets; past the end on the last row
      for (let t = 0; t < T; t++) positions[b * T + t] = Math.max(0, slot0 + t - cache.padLen[b]);
    }

    // x = embed[tokens]  (kernels/embedding.ts)
    be.embedding(s.x, w.embed, tokens); // x (M, D)
    observe?.(0, s.x);
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const lw = w.layers[l];
      // --- attention sublayer ---
      // q, k, v = xn·Wᵀ + b with xn = x / √(mean(x²) + ε) ⊙ w, per token; W = [Wq; Wk; Wv]  (kernels/normQkv.ts)
      be.normQkv(s.q, s.k, s.v, s.x, lw.inputNorm, c.rmsNormEps, lw.wqkv, lw.bqkv); // q (M, H·hd), k, v (M, Hkv·hd)
      // q, k = x·cos(pos·θ) + rotate_half(x)·sin(pos·θ) per head; K[b, slot0 + t] = k[b, t], V likewise  (kernels/ropeKvWrite.ts)
      be.ropeKvWrite(s.q, s.k, s.v, cache.k[l], cache.v[l], cache.rope, positions, slot0); // q, k in place; caches (B, S, Hkv, hd)
      // att = softmax(q·Kᵀ/√hd)·V over the row's real slots ≤ its own; head h reads kv head ⌊h/(H/Hkv)⌋  (kernels/attention.ts)
      be.attention(s.att, s.q, cache.k[l], cache.v[l], cache.padLen, slot0); // att (M, H·hd)
      // x = x + att·Woᵀ + bo  (kernels/matmulAdd.ts)
      be.matmulAdd(s.x, s.att, lw.wo, lw.bo); // x (M, D) += attention(x)
      // --- MLP sublayer ---
      // act = silu(xn·W_gateᵀ + b) ⊙ (xn·W_upᵀ + b), xn = x / √(mean(x²) + ε) ⊙ w  (kernels/normGateUpSwiglu.ts)
      be.normGateUpSwiglu(s.act, s.x, lw.postAttnNorm, c.rmsNormEps, lw.wGate, lw.wUp, lw.bGate, lw.bUp); // act (M, F)
      // x = x + act·W_downᵀ + b_down  (kernels/matmulAdd.ts)
      be.matmulAdd(s.x, s.act, lw.wDown, lw.bDown); // x (M, D) += mlp(x)
      observe?.(l + 1, s.x);
    }
    cache.length += T;

    // --- head: only the positions whose logits are wanted ---
    let rows = s.x; // (R, D)
    if (R < M) {
      // rows[b] = x[b·T + T − 1], each row's last token (with T = 1 every token is its row's last: R = M)  (kernels/gatherRows.ts)
      be.gatherRows(s.rows, s.x, s.lastRows); // rows (B, D)
      rows = s.rows;
    }
    // logits = rowsNorm·W_headᵀ, rowsNorm = rows / √(mean(rows²) + ε) ⊙ w  (kernels/normMatmul.ts)
    be.normMatmul(s.logits, rows, w.finalNorm, c.rmsNormEps, w.lmHead); // logits (R, V)
    if (observe) {
      // rowsNorm itself, for an observer only: the head above reads the rows through the norm  (kernels/rmsnorm.ts)
      be.rmsnorm(s.rowsNorm, rows, w.finalNorm, c.rmsNormEps); // rowsNorm (R, D)
      observe('normed', s.rowsNorm);
    }
    return s.logits;
  }

  /**
   * Prefill: left-pads the rows to a common length, fixes each row's pad count in the cache, and runs
   * them. Returns the padded length (Tmax) and the logits of `forward`.
   */
  prefill(
    cache: KvCache,
    rows: readonly (readonly number[])[],
    allPositions = false,
    observe?: StageObserver,
  ): { T: number; logits: Tensor } {
    if (rows.length !== cache.batch) throw new RoseError('INPUT', `prefill got ${rows.length} rows for a cache of batch ${cache.batch}`);
    if (cache.length !== 0) throw new RoseError('INPUT', 'prefill needs an empty KV cache', 'make a new cache with newKvCache()');
    const T = Math.max(...rows.map((r) => r.length));
    if (rows.some((r) => r.length === 0)) throw new RoseError('INPUT', 'every row needs at least one token');
    const tokens = new Int32Array(rows.length * T); // (B, T), pads are token 0 (their value never matters)
    rows.forEach((r, b) => {
      cache.padLen[b] = T - r.length;
      tokens.set(r, b * T + T - r.length);
    });
    return { T, logits: this.forward(cache, tokens, allPositions, observe) };
  }

  private checkCall(cache: KvCache, tokens: Int32Array, T: number): void {
    const V = this.config.vocabSize;
    if (!Number.isInteger(T) || T < 1) throw new RoseError('INPUT', `got ${tokens.length} tokens for a batch of ${cache.batch} rows`);
    if (cache.length + T > cache.capacity) {
      throw new RoseError(
        'LIMIT',
        `the KV cache holds ${cache.capacity} tokens; ${cache.length} are used and ${T} more were given`,
        'make the cache larger (up to max_position_embeddings), or shorten the prompt or the generation',
      );
    }
    for (let i = 0; i < tokens.length; i++) {
      if (!(tokens[i] >= 0 && tokens[i] < V)) {
        throw new RoseError('INPUT', `token id ${tokens[i]} is out of range: this model's vocab has ${V} ids (0..${V - 1})`);
      }
    }
  }

  private scratchFor(shape: ScratchShape): Scratch {
    const { M, R, B } = shape;
    const key = `${M},${R},${B}`;
    let s = this.scratch.get(key)?.buffers;
    if (!s) {
      this.freePrefillScratch();
      const c = this.config;
      const be = this.backend;
      const qDim = c.numAttentionHeads * c.headDim;
      const kvDim = c.numKeyValueHeads * c.headDim;
      s = {
        x: be.alloc([M, c.hiddenSize]),
        q: be.alloc([M, qDim]),
        k: be.alloc([M, kvDim]),
        v: be.alloc([M, kvDim]),
        att: be.alloc([M, qDim]),
        act: be.alloc([M, c.intermediateSize]),
        rows: be.alloc([R, c.hiddenSize]),
        rowsNorm: be.alloc([R, c.hiddenSize]),
        logits: be.alloc([R, c.vocabSize]),
        positions: new Int32Array(M),
        lastRows: Int32Array.from({ length: B }, (_, b) => ((b + 1) * M) / B - 1),
      };
      this.scratch.set(key, { shape, buffers: s });
    }
    return s;
  }

  /** Frees the buffers of every shape over KEEP_SCRATCH_MAX_ROWS rows: a prefill's, used once. */
  private freePrefillScratch(): void {
    for (const [key, { shape, buffers }] of this.scratch) {
      if (shape.M <= KEEP_SCRATCH_MAX_ROWS) continue;
      for (const v of Object.values(buffers)) if (!(v instanceof Int32Array)) this.backend.free(v);
      this.scratch.delete(key);
    }
  }
}
