/**
 * The README tells the truth: every command in it runs as written, the sample outputs it shows are what
 * those commands print, the API sample is examples/ask.mjs, and every speed figure comes from a
 * committed results file.
 *
 * Commands are the lines of ```sh blocks and the `$ ` lines of plain blocks (the lines after a `$ ` line
 * are its sample output). Cheap ones run for real: every `npx rose …` on a local model (in process, in a
 * temp folder that links the repository's weights/, examples/ and test/), `npm start` (on a terminal,
 * through `script`), `head`. Long or external ones are checked, not run: `rose pull` and eval shards
 * (parsed by the real option parser, stopped before their action), `npm run …` (the script exists, with
 * its file), `npm install` / `npm test` (how this test got here), `apt-get` (the packages .ci/run installs).
 * Sample outputs are compared with the numbers that depend on the machine (tok/s, seconds, absolute
 * paths) masked as `…`, and runs of spaces as one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'shell-quote';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProgram, main } from '../../src/cli/main.ts';
import { roseGenerate } from '../../src/decode/rose.ts';
import { loadLlama } from '../../src/model/load.ts';
import { webGpuUnderTest } from '../kernels/backends.ts';
import { loadFixture } from '../helpers/fixtures.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

interface Command {
  /** 1-based line of the README. */
  line: number;
  text: string;
  argv: string[];
  /** The sample output shown after a `$ ` line, if any. */
  sample?: string[];
  /** The `## ` section it is in. */
  section: string;
}

function readmeCommands(md: string): Command[] {
  const lines = md.split('\n');
  const out: Command[] = [];
  const sectionAt = (n: number) =>
    lines
      .slice(0, n)
      .filter((l) => l.startsWith('## '))
      .at(-1) ?? '';
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*)$/.exec(lines[i]);
    if (!fence) continue;
    const lang = fence[1];
    let j = i + 1;
    const body: { n: number; s: string }[] = [];
    for (; j < lines.length && lines[j] !== '```'; j++) body.push({ n: j + 1, s: lines[j] });
    if (lang === 'sh') {
      for (let k = 0; k < body.length; k++) {
        let text = body[k].s;
        const n = body[k].n;
        while (text.endsWith('\\') && k + 1 < body.length) text = `${text.slice(0, -1)} ${body[++k].s.trim()}`;
        if (text.trim() !== '') out.push({ line: n, text, argv: words(text, n), section: sectionAt(n) });
      }
    } else if (lang === '') {
      for (let k = 0; k < body.length; k++) {
        if (!body[k].s.startsWith('$ ')) continue;
        const sample: string[] = [];
        let m = k + 1;
        for (; m < body.length && !body[m].s.startsWith('$ '); m++) sample.push(body[m].s);
        const text = body[k].s.slice(2);
        out.push({ line: body[k].n, text, argv: words(text, body[k].n), sample, section: sectionAt(body[k].n) });
        k = m - 1;
      }
    }
    i = j;
  }
  return out;
}

/** Shell words; comments dropped; pipes, redirects and the like are refused (README commands stay plain). */
function words(text: string, line: number): string[] {
  const parsed = parse(text).filter((w) => !(typeof w === 'object' && 'comment' in w));
  for (const w of parsed) if (typeof w !== 'string') throw new Error(`README.md:${line}: shell syntax ${JSON.stringify(w)} in ${text}`);
  return parsed as string[];
}

/** What depends on the machine, masked; runs of spaces as one (the tok/s width moves the columns). */
const normalize = (s: string): string =>
  s
    .replace(/\d+(\.\d+)? tok\/s/g, '… tok/s')
    .replace(/ in \d+(\.\d+)? s /g, ' in … s ')
    .replace(/"seconds":[\d.e-]+/g, '"seconds":…')
    .replace(/"model":"[^"]*\/weights\/rose-micro"/g, '"model":"…/weights/rose-micro"')
    .replace(/(?<= )\d+\.\d{3}(?= |$)/gm, '…') // the seconds columns of rose eval's table
    .replace(/ +/g, ' ')
    .replace(/ +$/gm, '');

const commands = readmeCommands(README);

/** Runs `rose …` in process with stdout and stderr captured in the order they were written. */
async function roseInProcess(args: string[]): Promise<{ code: number; output: string }> {
  let output = '';
  const capture = (s: unknown) => {
    output += String(s);
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  try {
    return { code: await main(['node', 'rose', ...args]), output };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** Parses `rose …` with the real program and stops before the action runs. */
async function roseParseOnly(args: string[]): Promise<{ command: string; options: Record<string, unknown> }> {
  const program = buildProgram();
  let seen: { command: string; options: Record<string, unknown> } | undefined;
  program.hook('preAction', (_, action) => {
    seen = { command: action.name(), options: action.opts() };
    throw new Error('parsed');
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'rose', ...args]);
  } catch (e) {
    if ((e as Error).message !== 'parsed') throw e;
  } finally {
    err.mockRestore();
  }
  if (!seen) throw new Error(`rose ${args.join(' ')} did not reach an action`);
  return seen;
}

const cwdBefore = process.cwd();
let work = '';
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rose-readme-'));
  for (const d of ['weights', 'examples', 'test', 'node_modules']) symlinkSync(join(ROOT, d), join(work, d));
  process.chdir(work);
});
afterAll(() => process.chdir(cwdBefore));

/**
 * `npm start` on a terminal of 100 columns (script(1) gives it one), as the terminal shows it: stderr
 * goes to a file (so that no progress bar can show) and is put back where it appears, before the table.
 */
function runNpmStart(): string {
  const ts = join(work, 'npm-start.typescript');
  const errFile = join(work, 'npm-start.stderr');
  const r = spawnSync('script', ['-qec', `stty cols 100 rows 50; npm start 2>${errFile}`, ts], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const screen = readFileSync(ts, 'utf8')
    .replace(/\r/g, '')
    .split('\n')
    .filter((l) => !/^Script (started|done) on /.test(l));
  const tableAt = screen.findIndex((l) => l.startsWith('plain greedy'));
  expect(tableAt).toBeGreaterThan(0);
  const stderr = readFileSync(errFile, 'utf8').trimEnd().split('\n');
  // The adapter line, and nothing else. The README shows this machine's (no GPU: auto is the CPU); on a
  // machine with a GPU, auto takes it, and the line names it instead.
  expect(stderr).toHaveLength(1);
  expect(stderr[0]).toMatch(/^rose: rose-micro on (cpu \(1 thread\)|webgpu \((?!.*software).+\))$/);
  stderr[0] = 'rose: rose-micro on cpu (1 thread)';
  return [...screen.slice(0, tableAt), ...stderr, ...screen.slice(tableAt)].join('\n').trimEnd();
}
let npmStart: string | undefined;

/** Not run: `rose pull` and eval shards (long, or the network), and commands on a model that the README pulls first. */
const parseOnly = (c: Command): boolean => {
  const a = c.argv.slice(2);
  const model = a.includes('--model') ? a[a.indexOf('--model') + 1] : undefined;
  const pulled = model && /^weights\/([^/]+)--([^/]+)$/.exec(model);
  const pulledFirst = !!pulled && commands.some((p) => p.argv[2] === 'pull' && p.argv[3] === `${pulled[1]}/${pulled[2]}`);
  return a[0] === 'pull' || a.includes('--shard') || a.includes('--merge') || (pulledFirst && !existsSync(join(ROOT, model)));
};

describe('README.md', () => {
  it('has commands to check (sanity of the extraction)', () => {
    expect(commands.length).toBeGreaterThan(15);
    expect(commands.filter((c) => c.sample?.length).length).toBeGreaterThanOrEqual(4);
  });

  // In README order: `head -1 results.jsonl` reads what the rose eval before it wrote.
  it.each(commands.map((c) => [`README.md:${c.line}: ${c.text.slice(0, 90)}`, c] as const))('%s', async (_name, c) => {
    const [cmd, ...args] = c.argv;
    const sample = c.sample?.length ? normalize(c.sample.join('\n')) : undefined;
    if (c.section === '## Checking another backend' && c.sample !== undefined) {
      // The worked example (rose logits, examples/planted-bug.ts, rose diff): test/oracle/diff.test.ts runs
      // it and checks that rose diff prints the very block shown.
      expect(readFileSync(join(ROOT, 'test', 'oracle', 'diff.test.ts'), 'utf8')).toContain("'## Checking another backend'");
    } else if (cmd === 'sudo' || cmd === 'apt-get') {
      // System setup, not run here: the same packages as .ci/run installs.
      const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
      for (const p of c.argv.slice(c.argv.indexOf('install') + 1)) expect(ci, `.ci/run installs ${p}`).toMatch(new RegExp(`\\b${p}\\b`));
    } else if (cmd === 'npm' && (args[0] === 'install' || args[0] === 'test')) {
      expect(args[0] === 'install' ? PKG.scripts.prepare : PKG.scripts.test).toBeTruthy(); // not run: it is how this test got here
    } else if (cmd === 'npm' && args[0] === 'run') {
      const script = PKG.scripts[args[1]];
      expect(script, `package.json has a "${args[1]}" script`).toBeTruthy();
      for (const f of script.split(/\s+/).filter((w) => /\.(ts|mjs|js)$/.test(w))) expect(existsSync(join(ROOT, f)), f).toBe(true);
    } else if (cmd === 'npm' && args[0] === 'start') {
      npmStart ??= runNpmStart();
      if (sample !== undefined) expect(normalize(npmStart)).toBe(sample);
    } else if (cmd === 'npx' && args[0] === 'rose') {
      if (parseOnly(c)) {
        const parsed = await roseParseOnly(args.slice(1));
        expect(parsed.command).toBe(args[1]);
        return;
      }
      const r = await roseInProcess(args.slice(1));
      expect(r.code, r.output).toBe(0); // rose diff included: the README's diffs are within the tolerance
      if (sample !== undefined) expect(normalize(r.output.trimEnd())).toBe(sample);
    } else if (cmd === 'head') {
      const r = spawnSync(cmd, args, { cwd: work, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      if (sample !== undefined) expect(normalize(r.stdout.trimEnd())).toBe(sample);
    } else {
      throw new Error(`README.md:${c.line}: no rule to check \`${c.text}\`; add one to test/docs/readme.test.ts`);
    }
  });

  it('the API sample is examples/ask.mjs, word for word (test/package runs it)', () => {
    const api = README.slice(README.indexOf('## The API'));
    const block = /```js\n([\s\S]*?)```/.exec(api)?.[1];
    expect(block).toBe(readFileSync(join(ROOT, 'examples', 'ask.mjs'), 'utf8'));
  });

  it('every speed figure (GB/s, tok/s, ms, s) is in a committed results file', () => {
    const dir = join(ROOT, 'bench', 'results');
    const results = readdirSync(dir)
      .filter((f) => /\.(md|json)$/.test(f))
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('\n');
    const figures = [...README.matchAll(/(\d+(?:\.\d+)?) ?(GB\/s|tok\/s|ms|s)\b/g)];
    expect(figures.length).toBeGreaterThan(5);
    const missing = figures.filter(([, n, unit]) => {
      const forms = [n, ...(unit === 's' ? [String(+(Number(n) * 1000).toFixed(3))] : [])];
      return !forms.some((f) => new RegExp(`(^|[^\\d.])${f.replace('.', '\\.')}([^\\d]|$)`).test(results));
    });
    expect(missing.map((m) => m[0])).toEqual([]);
  });

  it('"12 bytes per step" is qualified: --top-k / --top-p read the probabilities back too', () => {
    const claim = README.split('\n\n').filter((p) => /12 bytes per step/.test(p));
    expect(claim.length).toBeGreaterThan(0);
    for (const p of claim) expect(p).toMatch(/--top-k.*--top-p[\s\S]*4·V bytes/);
  });
});

// The read-back the README states, measured on the WebGPU backend (its stats count every byte read).
const gpu = await webGpuUnderTest();
afterAll(() => gpu?.destroy());
describe.skipIf(!gpu)('read-back per decode step on WebGPU', () => {
  it('12 bytes for greedy decoding and temperature sampling; 12 + 4·V with top-k or top-p', async () => {
    const fx = loadFixture('tiny-gqa-bf16-tied');
    const model = loadLlama(fx.dir, gpu!);
    const V = model.config.vocabSize;
    const [pos, rev] = [fx.ref.rows[0].tokens, fx.ref.rows[1].tokens];
    const steps = 4;
    const readBack = async (options: Parameters<typeof roseGenerate>[3]) => {
      gpu!.resetStats();
      const r = await roseGenerate(model, pos, [rev], { maxNewTokens: steps, ...options });
      expect(r.steps).toBe(steps);
      return gpu!.stats.bytesRead;
    };
    expect(await readBack({})).toBe(12 * steps);
    expect(await readBack({ sampling: { temperature: 0.7, seed: 1 } })).toBe(12 * steps);
    expect(await readBack({ sampling: { topK: 5, seed: 1 } })).toBe((12 + 4 * V) * steps);
    expect(await readBack({ sampling: { topP: 0.9, seed: 1 } })).toBe((12 + 4 * V) * steps);
  });
});
