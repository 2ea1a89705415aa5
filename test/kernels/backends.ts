/**
 * The backends every kernel test runs on: the CPU reference (the TypeScript tier), the CPU's
 * WebAssembly SIMD tier (Node ≥ 20 always has it), and WebGPU when an adapter can be had.
 *
 * In CI (CI=true) a missing WebGPU adapter is a failure: the GPU kernels would silently go untested.
 * Elsewhere it is a loud warning on stderr and the WebGPU cases are skipped.
 *
 * ROSE_TEST_BACKENDS=cpu runs the CPU backend alone, on purpose and quietly (no adapter is even
 * asked for): the mutation runs (`npm run mutate`) use it so that the CPU code must be caught by
 * CPU tests, never by a WebGPU comparison that happens to run the same code.
 */
import type { Backend } from '../../src/kernels/backend.ts';
import { CpuBackend } from '../../src/kernels/cpu/backend.ts';
import type { WebGpuBackend, WebGpuBackendOptions } from '../../src/kernels/webgpu/backend.ts';
import type { OpenedWebGpu } from '../../src/kernels/webgpu/device.ts';

let described = false;

/** True when the caller asked for the CPU backend alone (ROSE_TEST_BACKENDS=cpu). */
export const cpuOnly = process.env.ROSE_TEST_BACKENDS === 'cpu';

/** `open()`'s result, or undefined with the warning / CI failure described above (always undefined when cpuOnly). */
async function orSkip<T>(open: () => Promise<T>): Promise<T | undefined> {
  if (cpuOnly) return undefined;
  try {
    return await open();
  } catch (e) {
    const msg = `${(e as Error).message}${(e as { hint?: string }).hint ? `\n  hint: ${(e as { hint?: string }).hint}` : ''}`;
    if (process.env.CI === 'true') throw new Error(`CI needs a WebGPU adapter for the kernel tests: ${msg}`);
    process.stderr.write(
      `\n${'!'.repeat(100)}\n!! WARNING: no WebGPU adapter, the WebGPU kernel tests are SKIPPED.\n!! ${msg}\n${'!'.repeat(100)}\n\n`,
    );
    return undefined;
  }
}

/** A WebGPU backend, or undefined (with the warning / CI failure described above). */
export async function webGpuUnderTest(opts: WebGpuBackendOptions = {}): Promise<WebGpuBackend | undefined> {
  return orSkip(async () => {
    const { WebGpuBackend } = await import('../../src/kernels/webgpu/backend.ts');
    const be = await WebGpuBackend.create(opts);
    if (!described) {
      process.stderr.write(`[kernels] ${be.description}\n`);
      described = true;
    }
    return be;
  });
}

/** A bare WebGPU device (for tests below the backend), or undefined as above. Destroy its device when done. */
export async function webGpuDeviceUnderTest(): Promise<OpenedWebGpu | undefined> {
  return orSkip(async () => (await import('../../src/kernels/webgpu/device.ts')).openWebGpu());
}

/** [cpu, cpu wasm, webgpu] — without webgpu outside CI when no adapter is available. */
export async function backendsUnderTest(): Promise<Backend[]> {
  const gpu = await webGpuUnderTest();
  const cpus = [new CpuBackend({ tier: 'ts' }), new CpuBackend({ tier: 'wasm' })];
  return gpu ? [...cpus, gpu] : cpus;
}

/** A backend's name in test titles and reports: the CPU's two tiers are told apart. */
export const backendLabel = (be: Backend): string => (be instanceof CpuBackend && be.tier === 'wasm' ? 'cpu-wasm' : be.name);
