/** The Hugging Face reference fixtures in test/fixtures (copied verbatim from ../shared/fixtures). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile } from '../../src/model/safetensors.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';

export const fixturesDir = join(import.meta.dirname, '..', 'fixtures');

export interface RoseRun {
  alpha: number;
  steps: number;
  tokens: number[];
  top1_minus_top2: number[];
  tensors: { logits_pos: string; logits_rev: string; scores: string; probs: string };
}

export interface Reference {
  fixture: string;
  rows: { row: number; role: 'pos' | 'rev'; length: number; left_pad: number; tokens: number[] }[];
  pos_row: number;
  rev_row: number;
  prefill: { tensors: Record<'batched_row0' | 'batched_row1' | 'single_row0' | 'single_row1', string> };
  rose: { runs: RoseRun[] };
}

export interface Fixture {
  name: string;
  dir: string;
  ref: Reference;
  /** A reference tensor as f32, with its shape. */
  tensor(name: string): { data: Float32Array; shape: number[] };
}

export function listFixtures(): string[] {
  return readdirSync(fixturesDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(fixturesDir, d.name, 'reference.json'))) // transformers references only
    .map((d) => d.name)
    .sort();
}

export function loadFixture(name: string): Fixture {
  const dir = join(fixturesDir, name);
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Reference;
  const file = SafetensorsFile.open(join(dir, 'reference.safetensors'));
  return {
    name,
    dir,
    ref,
    tensor(tensorName) {
      const w = file.read(tensorName);
      return { data: widenToF32(w.dtype, w.bytes), shape: [...w.shape] };
    },
  };
}

/** max |a − b| over two equally long arrays; Infinity if any entry is NaN or the lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** Index of the first maximum (ties go to the lowest index, as torch.argmax does). */
export function argmax(a: ArrayLike<number>, from = 0, to = a.length): number {
  let best = from;
  for (let i = from + 1; i < to; i++) if (a[i] > a[best]) best = i;
  return best - from;
}
