/**
 * rose-ts as a dependency of another project: `import { Rose } from 'rose-ts'` from a project in a temp
 * folder outside this repository (installed offline, as npm installs a folder: a link), its types
 * checked by tsc, and the examples/ scripts run as they are (the README's API sample is one of them).
 *
 * The package entry is the tsc build in dist/ (package.json "exports"; `npm install` builds it through
 * "prepare"). A dist/ older than src/ is rebuilt here first, so the test never checks stale files.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rose, ROSE_MICRO_DIR } from '../../src/api.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const QUESTION = "Could you show me a way to find out my cousin's password?"; // examples/ask.mjs asks it

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

beforeAll(() => {
  const entry = join(ROOT, 'dist', 'api.js');
  if (!existsSync(entry) || statSync(entry).mtimeMs < newestMtime(join(ROOT, 'src'))) {
    process.stderr.write('[package] dist/ is missing or older than src/: npm run build\n');
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  }
}, 300_000);

/** What examples/ask.mjs must print, from the API run from source. */
async function askOutput(): Promise<string> {
  const rose = await Rose.open(ROSE_MICRO_DIR, { backend: 'cpu' });
  const contrasted = await rose.ask(QUESTION, { maxNewTokens: 32 });
  const plain = await rose.ask(QUESTION, { plain: true, maxNewTokens: 32 });
  const traced = await rose.ask(QUESTION, { trace: true, beta: 0.1, maxNewTokens: 4, sampling: { temperature: 0.7, topP: 0.9, seed: 1 } });
  const first = rose.traceJson(traced, { beta: 0.1 }).trace[0];
  rose.close();
  return `${contrasted.text}\nplain: ${plain.text}\nstep 0: ${JSON.stringify(first.text)} (plain greedy: ${JSON.stringify(first.plainText)}), changed: ${first.changed}\n`;
}

const run = (cmd: string, args: string[], cwd: string) => {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ROSE_WEBGPU_ADAPTER: '' } });
  expect(r.status, `${cmd} ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
};

describe('rose-ts as a package', () => {
  it('every script in examples/ runs as it is, importing rose-ts by name; ask.mjs (the README API sample) prints its answers', async () => {
    const scripts = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.mjs'));
    expect(scripts).toContain('ask.mjs');
    for (const f of scripts) {
      const out = run(process.execPath, [join(ROOT, 'examples', f)], ROOT);
      if (f === 'ask.mjs') expect(out).toBe(await askOutput());
    }
  });

  it('another project installs it offline, imports { Rose } from "rose-ts" and type-checks against its .d.ts', async () => {
    const app = mkdtempSync(join(tmpdir(), 'rose-consumer-'));
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { 'rose-ts': `file:${ROOT}` } }),
    );
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], app);
    writeFileSync(
      join(app, 'app.mjs'),
      [
        "import { Rose, ROSE_MICRO_DIR } from 'rose-ts';",
        "const rose = await Rose.open(ROSE_MICRO_DIR, { backend: 'cpu' });",
        `process.stdout.write((await rose.ask(${JSON.stringify(QUESTION)}, { maxNewTokens: 4 })).text);`,
        'rose.close();',
      ].join('\n'),
    );
    const api = await Rose.open(ROSE_MICRO_DIR, { backend: 'cpu' });
    const want = (await api.ask(QUESTION, { maxNewTokens: 4 })).text;
    api.close();
    expect(run(process.execPath, ['app.mjs'], app)).toBe(want);

    // Types: real declarations, not `any` (the @ts-expect-error lines would be unused, and fail, with any).
    writeFileSync(
      join(app, 'consumer.ts'),
      [
        "import { Rose, ROSE_MICRO_DIR, tokenize, type Answer, type TraceJson } from 'rose-ts';",
        "const rose: Rose = await Rose.open(ROSE_MICRO_DIR, { backend: 'cpu' });",
        "const answer: Answer = await rose.ask('Hi', { maxNewTokens: 2, trace: true });",
        'const trace: TraceJson = rose.traceJson(answer);',
        'const n: number = answer.tokens.length + trace.trace.length + (await tokenize(ROSE_MICRO_DIR, "Hi")).rows.length;',
        '// @ts-expect-error: alpha is a number',
        "await rose.ask('Hi', { alpha: 'high' });",
        '// @ts-expect-error: there is no such backend',
        "await Rose.open(ROSE_MICRO_DIR, { backend: 'tpu' });",
        'rose.close();',
        'export { n };',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
        },
        files: ['consumer.ts'],
      }),
    );
    run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app);

    // The bin comes along: `npx rose` in that project.
    expect(run(join(app, 'node_modules', '.bin', 'rose'), ['tokenize', '--prompt', 'Hi'], app)).toMatch(
      /^positive: .*\n {2}text: .*\n {2}ids: {2}1,/,
    );
  });

  it('the package ships the build, its types, the CLI and the embedded model', () => {
    const out = run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
    const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0].files.map((f) => f.path));
    for (const f of [
      'dist/api.js',
      'dist/api.d.ts',
      'dist/kernels/cpu/poolWorker.js',
      'bin/rose.mjs',
      'weights/rose-micro/model.safetensors',
      'weights/rose-micro/tokenizer.json',
    ])
      expect(files.has(f), f).toBe(true);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.exports['.']).toEqual({ types: './dist/api.d.ts', default: './dist/api.js' });
  });
});
