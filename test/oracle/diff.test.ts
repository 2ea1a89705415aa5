/**
 * `rose diff` on dumps with planted differences: it names exactly the first layer and position that
 * differ, stays at exit 0 under the tolerance, and turns every unusable input into one line and exit 2.
 *
 * REF is the float64 reference of a real fixture (its hidden-states.safetensors, plus the
 * transformers logits of the same rows run alone), so shapes and magnitudes are those of a model.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from '../../src/model/safetensors.ts';
import { widenToF32 } from '../../src/kernels/cpu/dtype.ts';
import { writePlantedBugDump } from '../../examples/planted-bug.ts';
import { captureOutput, rose } from '../helpers/cli.ts';
import { fixturesDir, loadFixture } from '../helpers/fixtures.ts';

const io = captureOutput();
const dir = mkdtempSync(join(tmpdir(), 'rose-diff-'));
const FIXTURE = 'tiny-gqa-bf16-tied'; // 2 rows of 17 and 11 tokens, L = 3, hidden 96, vocab 1000
const L = 3;

interface Named {
  name: string;
  shape: number[];
  data: Float32Array;
}
let refTensors: Named[];
let refPath: string;

const write = (path: string, tensors: readonly Named[]) =>
  writeSafetensors(
    path,
    tensors.map((t): TensorToWrite => ({ name: t.name, dtype: 'F32', shape: t.shape, data: new Uint8Array(t.data.buffer) })),
  );

beforeAll(() => {
  const hs = SafetensorsFile.open(join(fixturesDir, FIXTURE, 'hidden-states.safetensors'));
  refTensors = hs.names().map((name) => {
    const w = hs.read(name);
    return { name, shape: [...w.shape], data: widenToF32(w.dtype, w.bytes) };
  });
  hs.close();
  const fx = loadFixture(FIXTURE);
  for (const r of [0, 1] as const) {
    const t = fx.tensor(fx.ref.prefill.tensors[r === 0 ? 'single_row0' : 'single_row1']);
    refTensors.push({ name: `logits.${r}`, shape: t.shape, data: t.data });
  }
  refPath = join(dir, 'ref.safetensors');
  write(refPath, refTensors);
});

/** Every stage of a row from `layer` on, in forward order: what a bug at that layer goes on to change. */
const downstream = (row: number, layer: number) => [
  ...Array.from({ length: L + 1 - layer }, (_, i) => `hidden.${row}.${layer + i}`),
  `normed.${row}`,
  `logits.${row}`,
];

/** REF with `delta` added from `position` on in the named tensors, and optional small noise everywhere. */
function perturbed(changes: { names: string[]; position: number; delta: number }[], noise = 0, seed = 1): Named[] {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1; // a small LCG: noise in [−1, 1)
  return refTensors.map((t) => {
    const data = Float32Array.from(t.data, (v) => v + noise * rand());
    const width = t.shape[1];
    for (const c of changes) {
      if (!c.names.includes(t.name)) continue;
      for (let i = c.position * width; i < data.length; i++) data[i] += c.delta;
    }
    return { ...t, data };
  });
}

const rowLength = (row: number) => refTensors.find((t) => t.name === `hidden.${row}.0`)!.shape[0];

describe('rose diff: the first divergence', () => {
  it('identical files: exit 0, every tensor ok, "all within tolerance"', async () => {
    expect(await rose('diff', refPath, refPath)).toBe(0);
    expect(io.stdout).toMatch(/^all within tolerance: max \|Δ\| 0 ≤ 1\.0e-4 over 12 tensor\(s\) \(the files are equal\)$/m);
    expect(io.stdout.match(/ ok$/gm)).toHaveLength(12);
    expect(io.stderr).toBe('');
  });

  it('a planted bug at layer l, position p (with its effect on every later stage) is reported at exactly (l, p)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1 }),
        fc.integer({ min: 0, max: L }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 2e-4, max: 3, noNaN: true }),
        fc.boolean(),
        async (row, layer, at, delta, laterInOtherRow) => {
          const position = Math.min(rowLength(row) - 1, Math.floor(at * rowLength(row)));
          const changes = [{ names: downstream(row, layer), position, delta }];
          // A second divergence in the other row at a LATER layer must not change the verdict.
          if (laterInOtherRow && layer < L) changes.push({ names: downstream(1 - row, layer + 1), position: 0, delta: 1 });
          const other = join(dir, 'other.safetensors');
          // Noise ≤ 4e-5 everywhere (an honest f32 backend's size of difference) stays under 1e-4.
          write(other, perturbed(changes, 2e-5));
          io.stdout = '';
          expect(await rose('diff', refPath, other)).toBe(1);
          const verdict = io.stdout.trim().split('\n').at(-1)!;
          const m = /^first divergence: row (\d), layer (\d), position (\d+): max \|Δ\| (\S+) > 1\.0e-4$/.exec(verdict);
          expect(m, verdict).not.toBeNull();
          expect([Number(m![1]), Number(m![2]), Number(m![3])]).toEqual([row, layer, position]);
          expect(Math.abs(Number(m![4]) - delta)).toBeLessThanOrEqual(0.05 * delta + 4e-5); // printed to 2 digits
        },
      ),
      { numRuns: 16, seed: 13 },
    );
  });

  it('the final norm and the logits are stages too: a bug there is named as such', async () => {
    const other = join(dir, 'other-normed.safetensors');
    write(other, perturbed([{ names: ['normed.1', 'logits.1'], position: 4, delta: 0.01 }]));
    expect(await rose('diff', refPath, other)).toBe(1);
    expect(io.stdout).toMatch(/^first divergence: row 1, final norm, position 4: max \|Δ\| 1\.0e-2 > 1\.0e-4$/m);
    write(other, perturbed([{ names: ['logits.0'], position: 16, delta: 0.5 }]));
    io.stdout = '';
    expect(await rose('diff', refPath, other)).toBe(1);
    expect(io.stdout).toMatch(/^first divergence: row 0, logits, position 16: max \|Δ\| 5\.0e-1 > 1\.0e-4$/m);
  });

  it('--tol and --expect set the bar: under it exit 0, over it exit 1', async () => {
    const other = join(dir, 'other-tol.safetensors');
    write(other, perturbed([{ names: downstream(0, 1), position: 3, delta: 0.05 }]));
    expect(await rose('diff', refPath, other, '--tol', '0.06')).toBe(0);
    expect(await rose('diff', refPath, other, '--tol', '0.04')).toBe(1);
    expect(await rose('diff', refPath, other, '--expect', 'f16')).toBe(0); // 0.1
    expect(await rose('diff', refPath, other, '--expect', 'bf16')).toBe(0); // 0.5
    io.stdout = '';
    expect(await rose('diff', refPath, other, '--expect', 'f32')).toBe(1); // 1e-4
    expect(io.stdout).toMatch(/^tolerance 1\.0e-4 on max \|Δ\| \(--expect f32: /m);
  });

  it('a note says when values exceed the scale the --expect floors were measured at (|ref| ≤ 15)', async () => {
    const big = join(dir, 'big.safetensors');
    write(
      big,
      refTensors.map((t) => (t.name === 'hidden.0.3' ? { ...t, data: t.data.map((v) => 20 * v) } : t)),
    );
    expect(await rose('diff', big, big, '--expect', 'bf16')).toBe(0);
    expect(io.stdout).toMatch(
      /^note: hidden\.0\.3 reach \|ref\| 2\.1e\+2, above the 15 where the noise floors behind --expect were measured;/m,
    );
    io.stdout = '';
    expect(await rose('diff', big, big, '--tol', '0.5')).toBe(0); // a tolerance the user derived: no note
    expect(io.stdout).not.toMatch(/^note:/m);
  });

  it('the logits columns: argmax agreement, top-5 overlap and KL(p_ref ‖ p_other) per position', async () => {
    const other = join(dir, 'other-logits.safetensors');
    const tensors = perturbed([]);
    const logits = tensors.find((t) => t.name === 'logits.1')!;
    // Position 2: swap its largest logit with its 7th largest: the argmax moves to the 7th's id, and
    // the top-5 loses the old argmax's id.
    const row = logits.data.subarray(2 * 1000, 3 * 1000);
    const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b);
    [row[order[0]], row[order[6]]] = [row[order[6]], row[order[0]]];
    write(other, tensors);
    expect(await rose('diff', refPath, other, '--json')).toBe(1);
    const report = JSON.parse(io.stdout);
    const t = report.tensors.find((x: { name: string }) => x.name === 'logits.1');
    expect(t.argmaxAgree).toBe(10); // 11 positions, one moved
    expect(t.top5Min).toBe(4);
    const p2 = t.positions[2];
    expect([p2.argmaxRef, p2.argmaxOther, p2.top5]).toEqual([order[0], order[6], 4]);
    // KL of the swap, computed here independently: only the two swapped entries differ.
    const lse = Math.log(Array.from(row).reduce((s, v) => s + Math.exp(v), 0)); // the same for both (a permutation)
    const [hi, lo] = [row[order[6]], row[order[0]]]; // ref values at the two swapped ids (row is now OTHER)
    const kl = Math.exp(hi - lse) * (hi - lo) + Math.exp(lo - lse) * (lo - hi);
    expect(p2.kl).toBeCloseTo(kl, 9);
    expect(t.positions[1].kl).toBe(0);
    expect(report.first).toMatchObject({ tensor: 'logits.1', row: 1, stage: 'logits', position: 2 });
  });
});

describe('rose diff: unusable input is one line and exit 2', () => {
  const cases: [string, () => string[], RegExp][] = [
    [
      'shapes differ',
      () => {
        const p = join(dir, 'short.safetensors');
        write(
          p,
          refTensors.map((t) =>
            t.name === 'hidden.0.2' ? { ...t, shape: [t.shape[0] - 1, t.shape[1]], data: t.data.slice(t.shape[1]) } : t,
          ),
        );
        return [refPath, p];
      },
      /^rose: error\[INPUT\]: shape mismatch: "hidden\.0\.2" is \[17, 96\] in REF and \[16, 96\] in OTHER \(/,
    ],
    [
      'a truncated .npy',
      () => {
        const p = join(dir, 'logits.0.npy');
        writeFileSync(p, readFileSync(join(fixturesDir, 'npy', 'f4.npy')).subarray(0, 180));
        return [refPath, p];
      },
      /logits\.0\.npy: <f4 \(3, 5\) needs 60 bytes of data but the file holds 52: it is truncated/,
    ],
    [
      'NaN in OTHER, named where it first appears along the forward pass',
      () => {
        const p = join(dir, 'nan.safetensors');
        const tensors = perturbed([]);
        tensors.find((t) => t.name === 'hidden.1.2')!.data[3 * 96 + 17] = Number.NaN;
        tensors.find((t) => t.name === 'logits.0')!.data[0] = Number.NaN; // later along the pass
        write(p, tensors);
        return [refPath, p];
      },
      /^rose: error\[NUMERIC\]: OTHER .*nan\.safetensors: hidden\.1\.2 holds NaN at position 3 \(feature 17\).*row 1, layer 2, position 3/,
    ],
    [
      'Inf in REF',
      () => {
        const p = join(dir, 'inf.safetensors');
        const tensors = perturbed([]);
        tensors.find((t) => t.name === 'logits.1')!.data[5 * 1000] = Number.NEGATIVE_INFINITY;
        write(p, tensors);
        return [p, refPath];
      },
      /^rose: error\[NUMERIC\]: REF .*inf\.safetensors: logits\.1 holds -Infinity at position 5 \(feature 0\)/,
    ],
    [
      'a raw file whose size does not fit the shape',
      () => {
        const p = join(dir, 'logits.0.bin');
        writeFileSync(p, new Uint8Array(16 * 1000 * 4));
        return [refPath, p];
      },
      /OTHER .*logits\.0\.bin holds 16000 f32 values \(64000 bytes\) but the shape \[17, 1000\] from REF's logits\.0 needs 17000/,
    ],
    [
      'a raw file that is not whole f32 values',
      () => {
        const p = join(dir, 'odd.bin');
        writeFileSync(p, new Uint8Array(10));
        return [p, p];
      },
      /odd\.bin is 10 bytes, not a whole number of f32 values/,
    ],
    [
      'two raw files and no --shape',
      () => [join(fixturesDir, 'npy', 'f4.bin'), join(fixturesDir, 'npy', 'f4.bin')],
      /both raw f32 files.*pass --shape T,V/,
    ],
    ['an integer .npy', () => [refPath, join(fixturesDir, 'npy', 'i4.npy')], /i4\.npy: dtype "<i4" is not a float rose diff reads/],
    ['a missing file', () => [refPath, join(dir, 'nope.safetensors')], /^rose: error\[INPUT\]: OTHER .*nope\.safetensors does not exist$/m],
    [
      'a zip archive (np.savez)',
      () => {
        const p = join(dir, 'dump.npz');
        writeFileSync(p, Uint8Array.of(0x50, 0x4b, 3, 4, 0, 0, 0, 0));
        return [refPath, p];
      },
      /dump\.npz is a zip archive \(np\.savez or torch\.save\)/,
    ],
    [
      'no tensor name in common',
      () => {
        const p = join(dir, 'renamed.safetensors');
        write(
          p,
          refTensors.map((t) => ({ ...t, name: `model.${t.name}` })),
        );
        return [refPath, p];
      },
      /have no tensor name in common/,
    ],
    [
      'a single file that matches no REF tensor by name',
      () => [refPath, join(fixturesDir, 'npy', 'f4.npy')],
      /OTHER .*f4\.npy holds one tensor and REF .* holds 12; which one is it\? \(name the file after the tensor \(e\.g\. hidden\.0\.0\.npy\) or pass --tensor NAME/,
    ],
    [
      '--tol with --expect',
      () => [refPath, refPath, '--tol', '1e-3', '--expect', 'bf16'],
      /option '--tol <x>' cannot be used with option '--expect <precision>'/,
    ],
    ['a bad --shape', () => [refPath, refPath, '--shape', '3,x'], /"3,x" is not a shape/],
    ['an unknown precision', () => [refPath, refPath, '--expect', 'f8'], /Allowed choices are f32, f16, bf16/],
  ];
  it.each(cases)('%s', async (_what, args, message) => {
    expect(await rose('diff', ...args())).toBe(2);
    expect(io.stderr).toMatch(message);
    expect(io.stderr.trim().split('\n')).toHaveLength(1);
    expect(io.stderr).not.toMatch(/\n\s+at /);
    expect(io.stdout).toBe('');
  });
});

describe('the worked example of README.md ("Checking another backend")', () => {
  const repo = join(import.meta.dirname, '..', '..');
  const whole = readFileSync(join(repo, 'README.md'), 'utf8');
  const readme = whole.slice(whole.indexOf('## Checking another backend')); // this section only
  const line = (prefix: string) => readme.split('\n').find((l) => l.startsWith(prefix))!;
  /** "--a x --b y" → { a: "x", b: "y" } (the flags of the README's command lines; --hidden-states is bare). */
  const flags = (cmd: string) => {
    const words = cmd.split(' ');
    const out: Record<string, string> = {};
    words.forEach((w, i) => {
      if (w.startsWith('--')) out[w.slice(2)] = words[i + 1]?.startsWith('--') ? '' : (words[i + 1] ?? '');
    });
    return out;
  };
  const normalize = (s: string) => s.replace(/Node \d+\.\d+\.\d+/g, 'Node x.y.z'); // the REF line names the Node that ran it

  it('prints exactly the block the README shows, and the eps variant ends as the README says', async () => {
    const d = mkdtempSync(join(tmpdir(), 'rose-readme-'));
    const logits = flags(line('$ npx rose logits --model test/fixtures/tiny-gqa-bf16-tied'));
    const planted = flags(line('$ npx tsx examples/planted-bug.ts'));
    const diffCmd = line('$ npx rose diff /tmp/ref.safetensors /tmp/other.safetensors');
    const inTmp = (p: string) => p.replace(/^\/tmp/, d);
    expect(
      await rose('logits', '--model', join(repo, logits.model), '--ids', logits.ids, '--hidden-states', '--out', inTmp(logits.out)),
    ).toBe(0);
    const rows = [planted.ids.split(',').map(Number)];
    await writePlantedBugDump(join(repo, planted.model), rows, planted.bug as 'rope', Number(planted.layer), inTmp(planted.out));
    io.stdout = '';
    expect(await rose('diff', inTmp('/tmp/ref.safetensors'), inTmp('/tmp/other.safetensors'))).toBe(1);
    const start = readme.indexOf(diffCmd) + diffCmd.length + 1;
    const shown = readme.slice(start, readme.indexOf('\n```', start));
    expect(normalize(io.stdout.trimEnd().replaceAll(d, '/tmp'))).toBe(normalize(shown));

    await writePlantedBugDump(join(repo, planted.model), rows, 'eps', 1, inTmp('/tmp/eps.safetensors'));
    io.stdout = '';
    expect(await rose('diff', inTmp('/tmp/ref.safetensors'), inTmp('/tmp/eps.safetensors'))).toBe(1);
    const verdict = io.stdout.trimEnd().split('\n').at(-1)!;
    expect(readme.replace(/\s+/g, ' ')).toContain(`\`${verdict}\``);
    expect(io.stdout).toMatch(/^logits\.0 .* 7\/7 +5\/5 +2\.2e-8 /m);
  });
});
