// Mutation testing (`npm run mutate`): StrykerJS changes one line of the files below at a time and
// runs the CPU tests (vitest.mutate.config.ts) against each change; a change no test notices is a
// surviving mutant. Too slow for CI (tens of minutes on two cores): a separate command.
// Results: reports/mutation/ (HTML and JSON); the scores and the equivalent survivors are kept in
// test/MUTATION.md. A subset: `npm run mutate -- --mutate src/decode/rose.ts`.
import { readdirSync, readFileSync } from 'node:fs';

/**
 * The CPU side of each kernel file: everything above its `// --- WebGPU ---` line. The WGSL strings
 * and the host wrappers below that line answer to the WebGPU tests, which the mutation runs leave out.
 * A kernel file without that line is an error here, never silently mutated whole.
 */
function cpuSideOfKernels(dir, notKernels) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !notKernels.includes(f))
    .sort()
    .map((f) => {
      const lines = readFileSync(`${dir}/${f}`, 'utf8').split('\n');
      const marker = lines.findIndex((l) => l.startsWith('// --- WebGPU ---'));
      if (marker < 1) throw new Error(`stryker.config.mjs: ${dir}/${f} has no "// --- WebGPU ---" line to end its CPU part at`);
      return `${dir}/${f}:1-${marker}`; // 1-based, inclusive: line `marker` is the one above the marker
    });
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  // Each mutant runs only the tests that cover it, not the whole suite.
  coverageAnalysis: 'perTest',
  mutate: [
    'src/decode/rose.ts',
    'src/decode/sampling.ts',
    'src/model/llama.ts',
    'src/model/rope.ts',
    'src/model/safetensors.ts',
    // backend.ts is the interface (types and numel), select.ts picks a backend: neither is a kernel.
    ...cpuSideOfKernels('src/kernels', ['backend.ts', 'select.ts']),
    'src/kernels/cpu/matmulFast.ts', // the numbered matmul variants: CPU only
  ],
  checkers: [],
  // Two cores shared with other work: one test process at a time; a mutant that makes a loop endless
  // is cut off after 3× the unmutated run's time plus 10 s.
  concurrency: 1,
  timeoutFactor: 3,
  timeoutMS: 10_000,
  // The unmutated run of the CPU tests takes 1–2 min here, more when the cores are busy.
  dryRunTimeoutMinutes: 30,
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
