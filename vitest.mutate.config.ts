/**
 * The vitest configuration of the mutation runs (`npm run mutate`, stryker.config.mjs): the CPU test
 * files only, on the CPU backend alone (ROSE_TEST_BACKENDS=cpu, test/kernels/backends.ts). A mutant
 * in a CPU twin must be killed by a CPU test: with WebGPU on, a comparison against the WGSL kernel
 * could kill it, and the CPU code would look tested when no CPU test checks it.
 *
 * Left out: the browser and WebGPU-fault suites (WebGPU only), and the suites that run the CLI or the
 * eval runner in child processes (a child never sees the active mutant, so they would only add time).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/decode/**/*.test.ts',
      'test/model/**/*.test.ts',
      'test/kernels/**/*.test.ts',
      'test/oracle/hiddenStates.test.ts', // the forward pass's hidden states (src/model/llama.ts)
      'test/reliability/nonFinite.test.ts',
    ],
    env: { ROSE_TEST_BACKENDS: 'cpu' },
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
