/**
 * The tolerances behind `rose diff --expect`, from the noise floors measured on the reference
 * fixtures (docs/llama-semantics.md, §9 "How close is close enough"). Each is the bar the
 * README recommends for teacher-forced logits: a few times the largest difference between two
 * correct implementations at that precision, and below the smallest planted bug it must catch.
 *
 * Those floors were measured on tiny random models whose logits stay within |15| (their hidden states
 * within |10.3|). Float error grows with the magnitude of the values, so for a model whose tensors are
 * larger these are a starting point, not a law: measure the floor of your own model (README,
 * "Checking another backend") and pass it with --tol.
 */
export type Precision = 'f32' | 'f16' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['f32', 'f16', 'bf16'];

export const EXPECTED_TOLERANCE: Record<Precision, { tolerance: number; why: string }> = {
  // Every correct f32 evaluation order tried lands within 2.1e-5 of transformers: 5× headroom, and
  // still below the smallest planted bug (rms_norm_eps 1e-5 ↔ 1e-6 in the tied fixture: 9.4e-4).
  f32: { tolerance: 1e-4, why: 'correct f32 orderings differ by ≤ 2.1e-5 on the fixtures; 5× that' },
  // f16 compute, emulated (weights and activations rounded to f16, f32 accumulation): 0.014–0.042.
  f16: { tolerance: 0.1, why: 'f16 compute differs from f32 by 0.014–0.042 on the fixtures (emulated); ~2.5× that' },
  // bf16 compute in transformers itself: prefill 0.12–0.157, teacher-forced decode up to 0.174.
  bf16: { tolerance: 0.5, why: 'bf16 compute differs from f32 by up to 0.174 on the fixtures (transformers); ~3× that' },
};

/** The largest |value| of the tensors those floors were measured on (logits ≤ 14.7, rounded up). */
export const MEASURED_SCALE = 15;
