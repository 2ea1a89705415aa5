// Mutation testing (`npm run mutate`): StrykerJS changes one piece of the files below at a time and
// runs CPU tests (vitest.mutate.config.ts) against each change; a change no test notices is a
// surviving mutant. Too slow for CI (hours on two busy cores): separate commands. test/MUTATION.md
// has the scores, the survivors judged equivalent, and how to read a run.
//
//   npm run mutate                     every file in scope against every CPU test file (slowest)
//   npm run mutate:decode              one group: its files against the tests written for them
//     (also :model, :rope, :safetensors, :kernels, :matmul; ROSE_MUTATE_GROUP picks the group)
//
// Why groups: a mutant in code that runs while test files load (reading a checkpoint, building the
// RoPE table) is "static", and Stryker runs EVERY test for it. Against all CPU test files that is
// ~1.5 min per mutant here, hours per file. A group runs its files against a subset of the CPU tests,
// so its score is a lower bound of the all-tests score (more tests only kill more mutants).
import { readdirSync, readFileSync } from 'node:fs';

/**
 * The CPU side of each kernel file: everything above its `// --- WebGPU ---` line. The WGSL strings
 * and the host wrappers below that line answer to the WebGPU tests, which the mutation runs leave out.
 * A kernel file without that line is an error here, never silently mutated whole.
 */
function cpuSideOfKernels(dir, notKernels, noWebGpu) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !notKernels.includes(f))
    .sort()
    .map((f) => {
      if (noWebGpu.includes(f)) return `${dir}/${f}`; // all of it is CPU-side
      const lines = readFileSync(`${dir}/${f}`, 'utf8').split('\n');
      const marker = lines.findIndex((l) => l.startsWith('// --- WebGPU ---'));
      if (marker < 1) throw new Error(`stryker.config.mjs: ${dir}/${f} has no "// --- WebGPU ---" line to end its CPU part at`);
      return `${dir}/${f}:1-${marker}`; // 1-based, inclusive: line `marker` is the one above the marker
    });
}

/** Every CPU test file that runs in-process (the CLI suites run children, which never see a mutant). */
const ALL_CPU_TESTS = [
  'test/decode/**/*.test.ts',
  'test/model/**/*.test.ts',
  'test/kernels/**/*.test.ts',
  'test/oracle/hiddenStates.test.ts',
  'test/reliability/nonFinite.test.ts',
];

/**
 * The CPU side of every kernel file. Not kernels: backend.ts is the interface (types and numel),
 * select.ts picks a backend, registry.ts and variantBackend.ts choose and dispatch variants
 * (test/kernels/registry.test.ts), composed.ts lists the fused ops' compositions and scratch.ts keeps
 * their temporaries. matmulAdd.ts has no WebGPU part (its fused kernels are matmul.ts's): all of it
 * is its composition.
 */
const KERNELS = cpuSideOfKernels(
  'src/kernels',
  ['backend.ts', 'select.ts', 'registry.ts', 'variantBackend.ts', 'composed.ts', 'scratch.ts'],
  ['matmulAdd.ts'],
);

const GROUPS = {
  // The decode loop and the samplers: the decode tests, the f64 decode-feature references included.
  decode: {
    mutate: ['src/decode/rose.ts', 'src/decode/sampling.ts'],
    tests: ['test/decode/**/*.test.ts', 'test/reliability/nonFinite.test.ts'],
  },
  // The forward pass: transformers' logits, the f64 hidden states, its properties, its own contract.
  model: {
    mutate: ['src/model/llama.ts'],
    tests: [
      'test/model/fixtures.test.ts',
      'test/model/properties.test.ts',
      'test/model/llama.test.ts',
      'test/oracle/hiddenStates.test.ts',
      'test/decode/limits.test.ts',
    ],
  },
  // RoPE frequencies and table, against their f64 statement (every Llama built at load would make
  // each of these mutants static: the rope tests call the functions themselves).
  rope: { mutate: ['src/model/rope.ts'], tests: ['test/model/rope.test.ts'] },
  // The safetensors reader and writer: their own suite and the checkpoint-loading errors.
  // files.test: checkpoints from picked files and URLs (SafetensorsCheckpoint.fromFiles).
  safetensors: {
    mutate: ['src/model/safetensors.ts'],
    tests: ['test/model/safetensors.test.ts', 'test/model/load-errors.test.ts', 'test/model/files.test.ts'],
  },
  // The CPU twins but matmul's, each against its op's test file and that file's f64 reference (a twin
  // must be caught by its own op's test: not by a whole model, whose tests cover every kernel line
  // and would make each mutant cost seconds more).
  kernels: {
    mutate: KERNELS.filter((f) => !f.startsWith('src/kernels/matmul.ts:')),
    // Listed, not globbed: picomatch reads !(matmul) as "not starting with matmul", which also dropped
    // matmulAdd.test.ts from this group until 2026-12-01.
    tests: readdirSync('test/kernels')
      .filter((f) => f.endsWith('.test.ts') && !['matmul.test.ts', 'cpuFast.test.ts', 'cpuThreadsModel.test.ts'].includes(f))
      .map((f) => `test/kernels/${f}`),
  },
  // matmul's twin (v1) and the numbered CPU variants v2, v3: the op's test against the f64 reference,
  // and cpuFast's bit-for-bit checks of every variant against v1 (row ranges, worker threads; the same
  // through a whole model is cpuThreadsModel.test, left out: minutes per mutant, instrumented).
  matmul: {
    mutate: [...KERNELS.filter((f) => f.startsWith('src/kernels/matmul.ts:')), 'src/kernels/cpu/matmulFast.ts'],
    tests: ['test/kernels/matmul.test.ts', 'test/kernels/cpuFast.test.ts'],
  },
};

const group = process.env.ROSE_MUTATE_GROUP;
if (group !== undefined && !(group in GROUPS))
  throw new Error(`ROSE_MUTATE_GROUP=${group}: not a group; one of ${Object.keys(GROUPS).join(', ')}`);
const chosen = group ? GROUPS[group] : { mutate: Object.values(GROUPS).flatMap((g) => g.mutate), tests: ALL_CPU_TESTS };
// vitest.mutate.config.ts reads the test list; Stryker's test-runner processes inherit it.
process.env.ROSE_MUTATE_TESTS = JSON.stringify(chosen.tests);
const reports = `reports/mutation/${group ?? 'all'}`;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  // Each mutant of a group runs every test of its group ('all'), stopping at the first failure.
  // 'perTest' (only the tests that cover the mutant) lost kills here: on 2026-12-01 it reported as
  // surviving a safetensors writer mutant and matmul v1 mutants that their tests fail on by hand.
  // `npm run mutate`, every file against every CPU test, keeps 'perTest' for time: a lower bound.
  coverageAnalysis: group ? 'all' : 'perTest',
  mutate: chosen.mutate,
  checkers: [],
  // Two cores shared with other work: one test process at a time; a mutant that makes a loop endless
  // is cut off after 3× the unmutated run's time plus 10 s.
  concurrency: 1,
  timeoutFactor: 3,
  timeoutMS: 10_000,
  // The unmutated run of all the CPU tests takes 1–2 min here, more when the cores are busy.
  dryRunTimeoutMinutes: 30,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `${reports}/index.html` },
  jsonReporter: { fileName: `${reports}/mutation.json` },
  incrementalFile: `${reports}/stryker-incremental.json`,
  tempDirName: `.stryker-tmp-${group ?? 'all'}`,
  cleanTempDir: 'always',
};
