/**
 * GPU faults, injected: a lost device and a pipeline that fails to compile. Each gives a RoseError
 * that names the adapter; with `auto` the session falls back to the CPU loudly and the answer equals
 * the CPU's — never silently wrong. Closing the session on purpose (rose eval's Ctrl-C) is no fault.
 *
 * `auto` takes a real GPU only; the software adapter these tests run on is asked for by name
 * (ROSE_WEBGPU_ADAPTER, which `auto` honours) so that auto's fallback path is what is tested.
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Rose } from '../../src/api.ts';
import { RoseError } from '../../src/errors.ts';
import type { WebGpuBackend } from '../../src/kernels/webgpu/backend.ts';
import { webGpuUnderTest } from '../kernels/backends.ts';
import { loadFixture } from '../helpers/fixtures.ts';

// Probe once: in CI a missing adapter fails here (backends.ts); elsewhere these tests are skipped loudly.
const probe = await webGpuUnderTest();
const probeAdapter = probe?.adapter;
probe?.destroy();
const DEFAULT = join(import.meta.dirname, '..', '..', 'weights', 'random-tiny');
const fx = loadFixture('tiny-gqa-bf16-tied');
const run = fx.ref.rose.runs.find((r) => r.alpha === 0.5)!;
const [pos, rev] = [fx.ref.rows[0].tokens, fx.ref.rows[1].tokens];

const opened: Rose[] = [];
afterAll(() => {
  for (const r of opened) r.close();
});
const envBefore = process.env.ROSE_WEBGPU_ADAPTER;
afterEach(() => {
  if (envBefore === undefined) delete process.env.ROSE_WEBGPU_ADAPTER;
  else process.env.ROSE_WEBGPU_ADAPTER = envBefore;
});
async function open(backend: 'webgpu' | 'auto', warnings: string[] = []): Promise<Rose> {
  // `auto` gets the probed adapter by name: a software adapter is never auto's own choice.
  if (backend === 'auto') process.env.ROSE_WEBGPU_ADAPTER = probeAdapter!.choice;
  const r = await Rose.open(fx.dir, { backend, warn: (l) => warnings.push(l) });
  opened.push(r);
  return r;
}

describe.skipIf(!probe)('GPU faults (injected)', () => {
  it('a lost device mid-generation: --backend webgpu fails with an error naming the adapter', async () => {
    const rose = await open('webgpu');
    const it = rose.streamIds(pos, [rev], { maxNewTokens: run.steps });
    await it.next();
    (rose.backend as WebGpuBackend).injectFault('lost');
    let error: unknown;
    try {
      for (;;) if ((await it.next()).done) break;
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RoseError);
    expect((error as RoseError).code).toBe('BACKEND');
    expect((error as RoseError).message).toMatch(/llvmpipe|swiftshader|webgpu/i);
  });

  it("a lost device mid-generation: --backend auto warns, falls back to the CPU, and the answer is the CPU's", async () => {
    const warnings: string[] = [];
    const rose = await open('auto', warnings);
    expect(rose.backend.name).toBe('webgpu');
    const it = rose.streamIds(pos, [rev], { maxNewTokens: run.steps });
    const streamed: number[] = [];
    for (let i = 0; ; i++) {
      if (i === 3) (rose.backend as WebGpuBackend).injectFault('lost');
      const r = await it.next();
      if (r.done) {
        expect(r.value.tokens).toEqual(run.tokens);
        break;
      }
      streamed.push(r.value.token);
    }
    expect(streamed).toEqual(run.tokens); // every token once, none repeated by the replay
    expect(rose.backend.name).toBe('cpu');
    expect(warnings.join('\n')).toMatch(/WARNING: .*lost.*falling back to the CPU/);
  });

  it('a pipeline that fails to compile: an error naming the adapter, or a loud CPU fallback with auto', async () => {
    const strict = await open('webgpu');
    (strict.backend as WebGpuBackend).injectFault('pipeline');
    await expect(strict.askIds(pos, [rev], { maxNewTokens: 2 })).rejects.toThrow(/WebGPU error on webgpu (llvmpipe|swiftshader|gpu)/i);

    const warnings: string[] = [];
    const auto = await open('auto', warnings);
    (auto.backend as WebGpuBackend).injectFault('pipeline');
    const answer = await auto.askIds(pos, [rev], { maxNewTokens: run.steps });
    expect(answer.tokens).toEqual(run.tokens);
    expect(auto.backend.name).toBe('cpu');
    expect(warnings.join('\n')).toMatch(/WARNING: WebGPU error on .*falling back to the CPU/);
  });
});

describe.skipIf(!probe)('closing a session', () => {
  it('mid-answer (rose eval on Ctrl-C) is no device loss: the answer stops with an error, no fallback, no warning', async () => {
    const warnings: string[] = [];
    const rose = await open('auto', warnings);
    expect(rose.backend.name).toBe('webgpu');
    const it = rose.streamIds(pos, [rev], { maxNewTokens: run.steps });
    await it.next();
    rose.close(); // what rose eval's finally does while an abandoned prompt is still decoding
    await expect(
      (async () => {
        for (;;) if ((await it.next()).done) return;
      })(),
    ).rejects.toThrow(/session is closed|WebGPU backend was destroyed/);
    expect(warnings).toEqual([]);
    expect(rose.backend.name).toBe('webgpu'); // not moved to the CPU
  });
});

it('an aborted signal stops an answer at its next step (rose eval passes Ctrl-C down this way)', async () => {
  const rose = await Rose.open(fx.dir, { backend: 'cpu' });
  opened.push(rose);
  const ac = new AbortController();
  const it = rose.streamIds(pos, [rev], { maxNewTokens: run.steps, signal: ac.signal });
  await it.next();
  ac.abort();
  await expect(it.next()).rejects.toThrow(/abort/i);
});

it('the default model opens on auto: a real GPU adapter when there is one, else the CPU, never a software adapter', async () => {
  delete process.env.ROSE_WEBGPU_ADAPTER;
  const r = await Rose.open(DEFAULT, { backend: 'auto' });
  opened.push(r);
  if (r.backend.name === 'webgpu') expect(r.backendSummary.adapter?.software).toBe(false);
  else expect(r.backendSummary.label).toBe('cpu (1 thread)');
  // The probe takes a real GPU first: when it found only a software adapter, there is no GPU, and auto is the CPU.
  if (probeAdapter?.software) expect(r.backend.name).toBe('cpu');
});
