/**
 * src/model/llama.ts reads as its header promises: every backend call carries a shape comment, and sits
 * under a one-line math comment naming the kernel file that implements it (`(kernels/<op>.ts)`, run.c
 * style; calls of the same op in a row share one). The file named must be the op's, and exist. And the
 * pages it and the README point a student to, docs/llama-semantics.md above all, link only to files
 * that exist.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const LLAMA = readFileSync(join(ROOT, 'src', 'model', 'llama.ts'), 'utf8').split('\n');

/** `be.<op>(…)` lines of the forward pass: 0-based line index and the op. */
const calls = LLAMA.flatMap((line, i) => {
  const m = /^\s*be\.(\w+)\(/.exec(line);
  return m ? [{ i, op: m[1] }] : [];
});

describe('src/model/llama.ts', () => {
  it('calls the backend (a sanity check on the parsing above)', () => {
    expect(calls.map((c) => c.op)).toEqual(
      expect.arrayContaining(['embedding', 'normQkv', 'ropeKvWrite', 'attention', 'matmulAdd', 'normGateUpSwiglu', 'normMatmul']),
    );
  });

  it.each(calls.map((c) => [c.i + 1, c.op, c.i] as const))('line %i (be.%s) has a shape comment', (_line, _op, i) => {
    expect(LLAMA[i]).toMatch(/;\s*\/\/ .*\(.+\)/);
  });

  it.each(calls.map((c) => [c.i + 1, c.op, c.i] as const))('line %i (be.%s) sits under its math and its kernel file', (_line, op, i) => {
    let j = i - 1;
    while (j >= 0 && /^\s*be\.(\w+)\(/.exec(LLAMA[j])?.[1] === op) j--; // a run of calls to the same op shares one comment
    const m = /^\s*\/\/ \S.* \(kernels\/(\w+)\.ts\)$/.exec(LLAMA[j] ?? '');
    expect(m, `line ${j + 1}: ${LLAMA[j]?.trim()}`).not.toBeNull();
    expect(m?.[1]).toBe(op);
    expect(existsSync(join(ROOT, 'src', 'kernels', `${op}.ts`))).toBe(true);
  });

  it('points to docs/llama-semantics.md', () => {
    expect(LLAMA.join('\n')).toContain('docs/llama-semantics.md');
  });
});

describe('the pages a student is pointed to link only to files that exist', () => {
  const pages = [
    'README.md',
    'test/fixtures/README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  it.each(pages)('%s', (page) => {
    const text = readFileSync(join(ROOT, page), 'utf8');
    const targets = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]).filter((t) => !/^[a-z]+:/.test(t));
    const missing = targets.filter((t) => !existsSync(join(ROOT, dirname(page), t)));
    expect(missing).toEqual([]);
  });

  it('README.md links docs/llama-semantics.md, and test/fixtures/README.md points to it', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('](docs/llama-semantics.md)');
    expect(readFileSync(join(ROOT, 'test', 'fixtures', 'README.md'), 'utf8')).toContain('](../../docs/llama-semantics.md)');
  });
});
