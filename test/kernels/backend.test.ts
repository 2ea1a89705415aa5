/**
 * What every backend promises beyond its ops: writes, ops and frees take effect in call order; a
 * script that opens a WebGPU backend, uses it and destroys it exits by itself.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backends, gpu, TIMEOUT, withScope } from './harness.ts';

describe.each(backends.map((b) => [b.name, b] as const))('%s backend', (_name, be) => {
  it('contrastSoftmax refuses a temperature that is not > 0, before running anything', async () => {
    await withScope(be, async (s) => {
      for (const temperature of [0, -1, Number.NaN]) {
        const call = be.contrastSoftmax(s.tensor([3]), s.tensor([1, 3]), { alphas: [], temperature, beta: 0, uniform: 0 });
        await expect(call).rejects.toMatchObject({ code: 'INPUT', message: `temperature must be > 0, got ${temperature}` });
      }
    });
  });

  it(
    'ordering: writes, ops and frees take effect in call order within one recording',
    async () => {
      for (const n of [5, 20_000]) {
        // 20 000 floats take the large-write path (a flush, then queue.writeBuffer).
        await withScope(be, async (s) => {
          const a = Float32Array.from({ length: n }, (_, i) => i);
          const b = Float32Array.from({ length: n }, (_, i) => 2 * i);
          const x = s.tensor([n], a);
          const y = s.tensor([n]);
          be.addInPlace(y, x); // y = a
          be.write(x, b);
          be.addInPlace(y, x); // y = a + b
          const tmp = be.alloc([n]);
          be.addInPlace(tmp, x);
          be.free(tmp); // recorded work still uses it
          expect(Array.from((await be.read(y)).subarray(0, 5))).toEqual([0, 3, 6, 9, 12]);
          expect((await be.read(y))[n - 1]).toBe(3 * (n - 1));
        });
      }
    },
    TIMEOUT,
  );
});

/** Runs ES-module `code` in a child Node (TypeScript through tsx): how it ended, and what it printed. */
async function runChild(code: string, nodeFlags: string[] = []): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) =>
    execFile(process.execPath, [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', code], { timeout: 60_000 }, (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, signal: err?.signal ?? null, stdout }),
    ),
  );
}

const srcPath = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));

(gpu ? describe : describe.skip)('webgpu backend lifetime', () => {
  it(
    'a script that opens, runs, and destroys the backend exits promptly',
    async () => {
      const src = srcPath('../../src/kernels/webgpu/backend.ts');
      const code = `
      import { WebGpuBackend } from ${JSON.stringify(src)};
      const be = await WebGpuBackend.create();
      const x = be.alloc([4]); be.write(x, Float32Array.of(1, 2, 3, 4)); be.addInPlace(x, be.alloc([4]));
      console.log((await be.read(x)).join(','));
      be.destroy();`;
      const t0 = Date.now();
      expect(await runChild(code)).toEqual({ code: 0, signal: null, stdout: '1,2,3,4\n' });
      expect(Date.now() - t0).toBeLessThan(20_000); // it exited by itself (the timeout would kill it)
    },
    TIMEOUT,
  );

  // The crash this guards killed a test worker in about half the full runs (test/run.mjs): the
  // `webgpu` package frees its Dawn instance once the GPU object is collected, even while the device
  // made from it has callbacks pending, and its next poll reads freed memory. device.ts holds every GPU
  // object for the process's life (dawnInstances); here a caller drops its own reference, as callers
  // were once told to, with a mapAsync pending, and collects at once (a child: a crash is a signal).
  it(
    'a caller dropping the GPU object while the device has callbacks pending does not crash the process',
    async () => {
      const src = srcPath('../../src/kernels/webgpu/device.ts');
      const code = `
      import { openWebGpu } from ${JSON.stringify(src)};
      for (let i = 0; i < 5; i++) {
        const opened = await openWebGpu();
        const buffer = opened.device.createBuffer({ size: 16, usage: 1 /* MAP_READ */ });
        const mapped = buffer.mapAsync(1 /* READ */); // pending: Dawn's runner polls the instance for it
        opened.device.destroy();
        opened.gpu = undefined; // the caller's reference to the GPU object: gone
        globalThis.gc();
        await new Promise((r) => setImmediate(r)); // the runner polls
        globalThis.gc();
        await mapped.catch(() => 'aborted by destroy()');
      }
      console.log('ok');`;
      const run = await runChild(code, ['--expose-gc']);
      expect(run).toEqual({ code: 0, signal: null, stdout: 'ok\n' }); // without dawnInstances: SIGSEGV
    },
    TIMEOUT,
  );
});
