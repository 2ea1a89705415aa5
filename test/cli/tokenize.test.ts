/** `rose tokenize`: the text the model sees and the ids of every row, without loading weights. */
import { describe, expect, it } from 'vitest';
import { Rose, ROSE_MICRO_DIR } from '../../src/api.ts';
import { MANUAL_REVERSE_PROMPT, POSITIVE_PROMPT } from '../../src/decode/prompts.ts';
import { captureOutput, rose } from '../helpers/cli.ts';

const io = captureOutput();
const Q = 'How do I bake bread?';

describe('rose tokenize', () => {
  it('prints the rendered text and the ids of the positive and reverse rows, as the decoder builds them', async () => {
    expect(await rose('tokenize', '--prompt', Q, '--reverse', 'manual', '--reverse', 'opposite')).toBe(0);
    const api = await Rose.open(ROSE_MICRO_DIR, { backend: 'cpu' });
    const rows = api.prepare(Q, { reverse: ['manual', 'opposite'] }).rows;
    api.close();
    const lines = io.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(9);
    expect(lines[0]).toBe(`positive: Llama-2 default system prompt (paper-verbatim), ${rows[0].length} tokens`);
    expect(lines[1]).toBe(`  text: ${JSON.stringify(`${POSITIVE_PROMPT}\nHuman:\n${Q}\n\nAssistant:\n`)}`);
    expect(lines[2]).toBe(`  ids:  ${rows[0].join(',')}`);
    expect(lines[3]).toBe(`reverse 1: Manual-Reverse (paper-verbatim), ${rows[1].length} tokens`);
    expect(lines[4]).toBe(`  text: ${JSON.stringify(`${MANUAL_REVERSE_PROMPT}\nHuman:\n${Q}\n\nAssistant:\n`)}`);
    expect(lines[5]).toBe(`  ids:  ${rows[1].join(',')}`);
    expect(lines[6]).toMatch(/^reverse 2: Opposite-Replace \(ROSE-style, not paper-verbatim\), \d+ tokens$/);
    expect(lines[8]).toBe(`  ids:  ${rows[2].join(',')}`);
  });

  it('--json; and its ids fed to rose generate --ids/--reverse-ids give the answer of --prompt', async () => {
    expect(await rose('tokenize', '--prompt', Q, '--template', 'paper', '--json')).toBe(0);
    const t = JSON.parse(io.stdout);
    expect(t.rows.map((r: { role: string }) => r.role)).toEqual(['positive', 'reverse']);
    io.stdout = '';
    const ids = ['--ids', t.rows[0].ids.join(','), '--reverse-ids', t.rows[1].ids.join(',')];
    expect(await rose('generate', '--backend', 'cpu', ...ids, '--max-new-tokens', '6', '--json')).toBe(0);
    const byIds = JSON.parse(io.stdout);
    io.stdout = '';
    expect(await rose('generate', '--backend', 'cpu', '--prompt', Q, '--max-new-tokens', '6', '--json')).toBe(0);
    expect(byIds.tokens).toEqual(JSON.parse(io.stdout).tokens);
  });

  it('needs a tokenizer: a checkpoint without one is a clear INPUT error', async () => {
    expect(await rose('tokenize', '--prompt', Q, '--model', 'test/fixtures/tiny-mha-f32')).toBe(1);
    expect(io.stderr).toMatch(/^rose: error\[INPUT\]: this checkpoint has no tokenizer\.json/);
  });
});
