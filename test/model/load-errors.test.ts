/** A checkpoint that does not match its config fails at load, naming the tensor, before any work. */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RoseError } from '../../src/errors.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import { loadLlama } from '../../src/model/load.ts';
import { SafetensorsFile, writeSafetensors } from '../../src/model/safetensors.ts';
import { fixturesDir } from '../helpers/fixtures.ts';
import { roseError } from '../helpers/errors.ts';

const source = join(fixturesDir, 'tiny-mha-f32');

/** A copy of tiny-mha-f32 whose weights went through `edit` (name → shape/bytes, or dropped). */
function editedCheckpoint(
  edit: (name: string, shape: number[], bytes: Uint8Array) => { shape: number[]; bytes: Uint8Array } | null,
): string {
  const dir = mkdtempSync(join(tmpdir(), 'rose-load-'));
  copyFileSync(join(source, 'config.json'), join(dir, 'config.json'));
  const file = SafetensorsFile.open(join(source, 'model.safetensors'));
  const tensors = [];
  for (const name of file.names()) {
    const w = file.read(name);
    const e = edit(name, [...w.shape], w.bytes);
    if (e) tensors.push({ name, dtype: 'F32' as const, shape: e.shape, data: e.bytes });
  }
  file.close();
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}

const loadError = (dir: string): RoseError => roseError(() => loadLlama(dir, new CpuBackend()));

describe('checkpoint / config mismatches', () => {
  it('an untouched copy loads (the harness itself is sound)', () => {
    const dir = editedCheckpoint((_, shape, bytes) => ({ shape, bytes }));
    expect(loadLlama(dir, new CpuBackend()).config.vocabSize).toBe(512);
  });

  it('a missing tensor names the tensor', () => {
    const e = loadError(editedCheckpoint((name, shape, bytes) => (name === 'model.layers.1.mlp.up_proj.weight' ? null : { shape, bytes })));
    expect(e.code).toBe('CHECKPOINT');
    expect(e.message).toContain('model.layers.1.mlp.up_proj.weight');
    expect(e.message).toContain('missing');
  });

  it('a missing lm_head suggests tie_word_embeddings', () => {
    const e = loadError(editedCheckpoint((name, shape, bytes) => (name === 'lm_head.weight' ? null : { shape, bytes })));
    expect(e.code).toBe('CHECKPOINT');
    expect(e.hint).toContain('tie_word_embeddings');
  });

  it('a shape that disagrees with config.json names the tensor and both shapes', () => {
    // Same bytes, transposed shape: the file is valid, only the config disagrees.
    const e = loadError(
      editedCheckpoint((name, shape, bytes) =>
        name === 'model.layers.0.mlp.down_proj.weight' ? { shape: [shape[1], shape[0]], bytes } : { shape, bytes },
      ),
    );
    expect(e.code).toBe('CHECKPOINT');
    expect(e.message).toContain('model.layers.0.mlp.down_proj.weight');
    expect(e.message).toContain('[172, 64]');
    expect(e.message).toContain('[64, 172]');
  });

  it('a config that disagrees with the weights (wrong vocab) is caught the same way', () => {
    const dir = editedCheckpoint((_, shape, bytes) => ({ shape, bytes }));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, vocab_size: 500 }));
    const e = loadError(dir);
    expect(e.code).toBe('CHECKPOINT');
    expect(e.message).toContain('model.embed_tokens.weight');
  });
});
