/** Runs `rose …` in process and captures what it writes, for the CLI tests. */
import { afterEach, beforeEach, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';

export interface Captured {
  stdout: string;
  stderr: string;
}

/** Installs per-test capture of stdout/stderr; read the returned object's fields inside a test. */
export function captureOutput(): Captured {
  const out: Captured = { stdout: '', stderr: '' };
  beforeEach(() => {
    out.stdout = out.stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.stdout += String(s);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      out.stderr += String(s);
      return true;
    });
  });
  afterEach(() => vi.restoreAllMocks());
  return out;
}

export const rose = (...args: string[]): Promise<number> => main(['node', 'rose', ...args]);
