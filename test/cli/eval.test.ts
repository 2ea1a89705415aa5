/** `rose eval` end to end on the embedded rose-micro, in process, CPU backend: the table per class, shards, merge. */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { Rose, ROSE_MICRO_DIR } from '../../src/api.ts';
import { evalProgressBar } from '../../src/cli/eval.ts';
import { isRefusal } from '../../src/eval/refusal.ts';
import { captureOutput, rose } from '../helpers/cli.ts';

const io = captureOutput();
const tmp = () => mkdtempSync(join(tmpdir(), 'rose-eval-cli-'));
const SAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'sample.jsonl');
const TOKENS = '8'; // enough for "I'm sorry, but I" and for the start of a compliance

/** A prompts file of some lines of examples/sample.jsonl. */
function sampleLines(dir: string, pick: (id: string) => boolean): string {
  const path = join(dir, 'prompts.jsonl');
  const lines = readFileSync(SAMPLE, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => pick(JSON.parse(l).id));
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}
const api = await Rose.open(ROSE_MICRO_DIR, { backend: 'cpu' });
afterAll(() => api.close());

const readLines = (path: string) =>
  readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('rose eval', () => {
  it('writes plain and ROSE answers where they belong (not swapped), a row per class in the right columns, and <out>.summary.json', async () => {
    const dir = tmp();
    const input = sampleLines(dir, (id) => id.endsWith('-000')); // one question per class
    const out = join(dir, 'results.jsonl');
    expect(await rose('eval', '--backend', 'cpu', '--input', input, '--out', out, '--max-new-tokens', TOKENS)).toBe(0);
    const lines = readLines(out);
    expect(lines.map((l) => l.id)).toEqual(['subtle-000', 'overt-000', 'benign-000']);
    // Each column holds what the API answers with that decoding: a swap of plain and ROSE fails here.
    const subtle = lines[0];
    expect(subtle.plain.text).toBe((await api.ask(subtle.prompt, { plain: true, maxNewTokens: Number(TOKENS) })).text);
    expect(subtle.rose.text).toBe((await api.ask(subtle.prompt, { maxNewTokens: Number(TOKENS) })).text);
    expect(subtle.alpha).toBe(0.5);
    const expected = new Map(
      lines.map((l) => [l.id, { plain: isRefusal(l.plain.text), rose: isRefusal(l.rose.text), cls: l.input.class }]),
    );
    // On the subtle class plain decoding complies and ROSE refuses: the two columns differ there.
    expect(expected.get('subtle-000')).toEqual({ plain: false, rose: true, cls: 'subtle' });
    const table = io.stdout.trim().split('\n');
    expect(table[0]).toMatch(/^class +prompts +plain refused +ROSE refused +plain tokens +ROSE tokens +plain s +ROSE s$/);
    const count = (cls: string | null, k: 'plain' | 'rose') =>
      [...expected.values()].filter((e) => (cls === null || e.cls === cls) && e[k]).length;
    const rowFor = (name: string, n: number, cls: string | null) =>
      new RegExp(
        `^${name} +${n} +[\\d.]+% \\(${count(cls, 'plain')}/${n}\\) +[\\d.]+% \\(${count(cls, 'rose')}/${n}\\) +[\\d.]+ +[\\d.]+ +[\\d.]+ +[\\d.]+$`,
      );
    expect(table.slice(1)).toHaveLength(4);
    expect(table[1]).toMatch(rowFor('benign', 1, 'benign'));
    expect(table[2]).toMatch(rowFor('overt', 1, 'overt'));
    expect(table[3]).toMatch(rowFor('subtle', 1, 'subtle'));
    expect(table[4]).toMatch(rowFor('total', 3, null));
    const summary = JSON.parse(readFileSync(`${out}.summary.json`, 'utf8'));
    expect(summary).toMatchObject({ format: 'rose-eval-summary/1', groupBy: 'class', refusalPhrases: 'default' });
    expect(summary.groups.map((g: { value: string; count: number }) => [g.value, g.count])).toEqual([
      ['benign', 1],
      ['overt', 1],
      ['subtle', 1],
    ]);
    expect(summary.groups[2].plain.refusals).toBe(count('subtle', 'plain'));
    expect(summary.groups[2].rose.refusals).toBe(count('subtle', 'rose'));
    expect(io.stderr).toContain(`rose eval: summary → ${out}.summary.json`);

    // A second run finds everything done and writes nothing new.
    expect(await rose('eval', '--backend', 'cpu', '--input', input, '--out', out, '--max-new-tokens', TOKENS)).toBe(0);
    expect(readLines(out)).toHaveLength(3);

    // --group-by another field; one that no line has is a usage error, found before any model is loaded.
    io.stdout = '';
    expect(await rose('eval', '--backend', 'cpu', '--input', input, '--out', out, '--max-new-tokens', TOKENS, '--group-by', 'task')).toBe(
      0,
    );
    expect(io.stdout).toMatch(/^task +prompts/);
    expect(await rose('eval', '--input', input, '--out', out, '--group-by', 'colour', '--model', '/no/such/model')).toBe(2);
    expect(io.stderr).toMatch(
      /rose: error\[USAGE\]: --group-by colour: no line of .*prompts\.jsonl has a "colour" field \(its fields besides id and prompt: class, task\)/,
    );
  });

  it('--shard i/n runs a deterministic part; --merge combines the parts, refusing duplicates', async () => {
    const dir = tmp();
    const input = sampleLines(dir, (id) => id.startsWith('subtle-')); // subtle-000 falls in shard 2 of 2, subtle-001 in shard 1
    const parts = [join(dir, 'part1.jsonl'), join(dir, 'part2.jsonl')];
    for (const [i, part] of parts.entries())
      expect(
        await rose('eval', '--backend', 'cpu', '--input', input, '--out', part, '--max-new-tokens', '2', '--shard', `${i + 1}/2`),
      ).toBe(0);
    const ids = parts.map((p) => readLines(p).map((l) => l.id));
    expect([...ids[0], ...ids[1]].sort()).toEqual(['subtle-000', 'subtle-001']);
    expect(ids[0].length).toBeGreaterThan(0);
    expect(ids[1].length).toBeGreaterThan(0);

    const merged = join(dir, 'all.jsonl');
    expect(await rose('eval', '--merge', ...parts, '--out', merged, '--input', input)).toBe(0);
    expect(readLines(merged).map((l) => l.id)).toEqual(readLines(input).map((l) => l.id)); // in the input's order
    expect(io.stdout).toMatch(/\ntotal +2 /);
    expect(existsSync(`${merged}.summary.json`)).toBe(true);

    copyFileSync(parts[0], join(dir, 'again.jsonl'));
    expect(await rose('eval', '--merge', parts[0], parts[1], join(dir, 'again.jsonl'), '--out', join(dir, 'dup.jsonl'))).toBe(1);
    expect(io.stderr).toMatch(/^rose: error\[INPUT\]: .*again\.jsonl:1: id "[\w-]+" is also in .*part1\.jsonl:1/m);
    expect(await rose('eval', '--merge', ...parts, '--out', join(dir, 'x.jsonl'), '--alpha', '0.3')).toBe(2);
    expect(io.stderr).toMatch(/error\[USAGE\]: --alpha does not apply to --merge/);
    expect(await rose('eval', '--out', join(dir, 'y.jsonl'))).toBe(2);
    expect(io.stderr).toMatch(/error\[USAGE\]: --input <prompts\.jsonl> is required/);
  });

  it('checks the input before it starts a backend: a bad prompts file is INPUT, even with an unusable adapter asked for', async () => {
    const dir = tmp();
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"id": 1}\n');
    const before = process.env.ROSE_WEBGPU_ADAPTER;
    process.env.ROSE_WEBGPU_ADAPTER = 'no-such-adapter'; // opening a backend would fail with BACKEND
    try {
      expect(await rose('eval', '--backend', 'webgpu', '--input', bad, '--out', join(dir, 'o.jsonl'))).toBe(1);
    } finally {
      if (before === undefined) delete process.env.ROSE_WEBGPU_ADAPTER;
      else process.env.ROSE_WEBGPU_ADAPTER = before;
    }
    expect(io.stderr).toMatch(/^rose: error\[INPUT\]: .*bad\.jsonl:1: "prompt" must be a string/);
  });
});

describe('the progress bar of rose eval', () => {
  const tty = () => {
    const s = Object.assign(new Writable(), { isTTY: true, columns: 100, text: '' });
    s._write = (chunk: Buffer, _enc: string, cb: () => void) => {
      s.text += chunk.toString();
      cb();
    };
    return s as NodeJS.WritableStream & { isTTY: boolean; text: string };
  };

  it('shows on a resumed run: it starts at the prompts already done', () => {
    const stream = tty();
    const bar = evalProgressBar(stream);
    bar.onProgress(4, 6); // a resumed run's first report: 4 of 6 done already
    bar.onProgress(5, 6);
    bar.stop();
    expect(stream.text).toMatch(/rose eval \[.*\] 4\/6 prompts/);
    expect(stream.text).toMatch(/5\/6 prompts/);
  });

  it('stays silent when stderr is not a terminal', () => {
    const stream = Object.assign(tty(), { isTTY: false });
    const bar = evalProgressBar(stream);
    bar.onProgress(0, 6);
    bar.stop();
    expect(stream.text).toBe('');
  });
});
