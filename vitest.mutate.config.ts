/**
 * The vitest configuration of the mutation runs (`npm run mutate`, stryker.config.mjs): CPU test
 * files only, on the CPU backend alone (ROSE_TEST_BACKENDS=cpu, test/kernels/backends.ts). A mutant
 * in a CPU twin must be killed by a CPU test: with WebGPU on, a comparison against the WGSL kernel
 * could kill it, and the CPU code would look tested when no CPU test checks it.
 *
 * Which test files: the list stryker.config.mjs passes in ROSE_MUTATE_TESTS (a group's, or every CPU
 * test file). Never the browser and WebGPU-fault suites (WebGPU only), nor the suites that run the CLI
 * or the eval runner in child processes (a child never sees the active mutant: they would only add time).
 */
import { defineConfig } from 'vitest/config';

const include: string[] = JSON.parse(process.env.ROSE_MUTATE_TESTS ?? 'null') ?? [
  'test/decode/**/*.test.ts',
  'test/model/**/*.test.ts',
  'test/kernels/**/*.test.ts',
  'test/oracle/hiddenStates.test.ts',
  'test/reliability/nonFinite.test.ts',
];

export default defineConfig({
  test: {
    include,
    // ROSE_MUTATION_RUN: tests whose work runs in worker threads skip it (a worker never sees the
    // active mutant: test/kernels/cpuFast.test.ts).
    env: { ROSE_TEST_BACKENDS: 'cpu', ROSE_MUTATION_RUN: '1' },
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
