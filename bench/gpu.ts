/**
 * The GPU-day script: `npm run bench:gpu`, for the day a machine with a real GPU is lent. In order:
 *
 *   1. the WebGPU correctness suites (vitest, CI=true: a missing adapter fails instead of skipping):
 *      every kernel variant against its f64 reference, the fixtures' logits against transformers, the
 *      ROSE streams, the decode-step counters, the GPU fault paths;
 *   2. decode (plain and ROSE steps, interleaved) and prefill on the SmolLM2-135M shape, f32 and bf16,
 *      with the fused kernels (the default) and unfused (--kernel unfused), on one adapter; GPU time
 *      per step and per kernel where the adapter has timestamp queries;
 *   3. bench/results/<machine>-<date>-gpu.json, naming the adapter (`-gpu`: `npm run bench` writes
 *      <machine>-<date>.json, and a GPU day runs both).
 *
 * Options: --reduced (2 layers, vocab 4096, few steps, one suite: checks the script on a software
 * adapter in about two minutes; its figures mean nothing), --no-tests, --machine NAME, --out DIR,
 * --rated-gbps N (the card's rated memory bandwidth: reports f32 decode's fraction of it, the issue's
 * goal ≥ 0.35). The adapter is the one the WebGPU backend picks (ROSE_WEBGPU_ADAPTER names another).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKernelChoice } from '../src/kernels/registry.ts';
import { WebGpuBackend } from '../src/kernels/webgpu/backend.ts';
import { runDecode, type DecodeOptions, type DecodeResult } from './lib/decode.ts';
import { buildSmolLM2 } from './lib/model.ts';
import { gc, log, round } from './lib/timing.ts';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const reduced = flag('reduced');
const machine = (option('machine') ?? hostname()).replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64) || 'machine';
const outDir = option('out') ?? join(import.meta.dirname, 'results');
const ratedGBps = option('rated-gbps') === undefined ? null : Number(option('rated-gbps'));
if (ratedGBps !== null && !(ratedGBps > 0)) throw new Error(`--rated-gbps must be a positive number of GB/s, got ${option('rated-gbps')}`);
const t0 = performance.now();
const lg = (s: string) => log(`[bench:gpu ${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);

// --- 1. the WebGPU correctness suites ---------------------------------------------------------------
const SUITES = [
  'test/kernels', // every op's variants (fused and unfused) against the f64 references, split weights
  'test/model/fixtures.test.ts', // logits within 1e-4 of transformers, every fixture
  'test/model/decodeStep.test.ts', // dispatches, submits and bytes read back per step; GPU time
  'test/model/roseMicro.test.ts',
  'test/decode/rose.test.ts', // ROSE streams exact
  'test/decode/features.test.ts',
  'test/reliability/gpuFaults.test.ts',
];
const suites = reduced ? ['test/model/decodeStep.test.ts'] : SUITES;
let tests: { files: string[]; passed: number; failed: number; seconds: number; exitCode: number | null } | null = null;
if (!flag('no-tests')) {
  lg(`correctness suites: ${suites.join(' ')}`);
  const report = join(tmpdir(), `rose-bench-gpu-${process.pid}.json`);
  const started = performance.now();
  const run = spawnSync('npx', ['vitest', 'run', ...suites, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, CI: 'true' },
  });
  const counts = (() => {
    try {
      const r = JSON.parse(readFileSync(report, 'utf8')) as { numPassedTests: number; numFailedTests: number };
      return { passed: r.numPassedTests, failed: r.numFailedTests };
    } catch {
      return { passed: 0, failed: Number.NaN }; // no report: the run itself failed (exitCode says how)
    } finally {
      rmSync(report, { force: true });
    }
  })();
  tests = { files: suites, ...counts, seconds: round((performance.now() - started) / 1000), exitCode: run.status };
  lg(`suites: ${counts.passed} passed, ${counts.failed} failed (exit ${run.status})`);
}

// --- 2. decode and prefill: f32 and bf16, fused and unfused ---------------------------------------------
const decodeOptions: Omit<DecodeOptions, 'log'> = reduced
  ? { prefillTokens: 4, prefillRuns: 1, promptTokens: 2, rounds: 2, warmupRounds: 1, profileSteps: 0 }
  : { prefillTokens: 128, prefillRuns: 3, promptTokens: 64, rounds: 20, warmupRounds: 3, profileSteps: 0 };

interface GpuRun {
  dtype: 'f32' | 'bf16';
  kernels: 'fused' | 'unfused';
  dispatches_per_step: number | null;
  submits_per_step: number | null;
  readback_bytes_per_step: number;
  plain_step_ms: number;
  rose_step_ms: number;
  rose_over_plain_step_ratio: number;
  gpu_ms_per_step: number | null;
  prefill_tokens_per_second: number | null;
  weight_bytes_per_step: number;
  /** Weight bytes per step ÷ the median plain step: the bandwidth decode reaches. */
  decode_weight_gbps: number;
  /** decode_weight_gbps ÷ --rated-gbps, when given. */
  fraction_of_rated_bandwidth: number | null;
  decode: DecodeResult;
}

const be = await WebGpuBackend.create();
const runs: GpuRun[] = [];
let adapter: { description: string; summary: unknown; canTime: boolean };
try {
  adapter = { description: be.description, summary: be.adapter, canTime: be.canTime };
  lg(`adapter: ${be.description}`);
  for (const dtype of ['f32', 'bf16'] as const) {
    lg(`${dtype}: building the model`);
    const bm = buildSmolLM2(be, dtype, reduced);
    for (const kernels of ['fused', 'unfused'] as const) {
      be.forceKernels(kernels === 'fused' ? {} : parseKernelChoice('unfused'));
      lg(`${dtype} ${kernels}: decode and prefill`);
      const d = await runDecode(bm, { ...decodeOptions, log: lg });
      const gbps = round(bm.weightBytesPerStep / d.plain.medianMs / 1e6);
      runs.push({
        dtype,
        kernels,
        dispatches_per_step: d.dispatchesPerStep,
        submits_per_step: d.submitsPerStep,
        readback_bytes_per_step: d.readbackBytesPerStep,
        plain_step_ms: d.plain.medianMs,
        rose_step_ms: d.rose.medianMs,
        rose_over_plain_step_ratio: d.roseOverPlainStepRatio,
        gpu_ms_per_step: d.gpuTime?.stepMs ?? null,
        prefill_tokens_per_second: d.prefill?.tokensPerSecond ?? null,
        weight_bytes_per_step: bm.weightBytesPerStep,
        decode_weight_gbps: gbps,
        fraction_of_rated_bandwidth: ratedGBps === null ? null : round(gbps / ratedGBps),
        decode: d,
      });
      lg(`${dtype} ${kernels}: ${d.dispatchesPerStep} dispatches, plain ${d.plain.medianMs} ms, ROSE ${d.rose.medianMs} ms, ${gbps} GB/s`);
    }
    be.forceKernels({});
    gc();
  }
} finally {
  be.destroy();
}

// --- 3. the results file ---------------------------------------------------------------------------------
const date = new Date().toISOString().slice(0, 10);
const results = {
  schema: 'bench-gpu-1',
  machine,
  date,
  reduced,
  wallSeconds: round((performance.now() - t0) / 1000),
  adapter,
  ratedGBps,
  notes: [
    reduced
      ? 'REDUCED run (--reduced): SmolLM2-135M per-layer shapes with 2 layers and vocab 4096, few steps: a check of the script, not a figure.'
      : 'SmolLM2-135M configuration, deterministic random weights built in memory.',
    'dispatches / submits / readback bytes per ROSE step are the backend counters; gpu_ms_per_step comes from timestamp queries (null where the adapter has none); decode_weight_gbps = weight bytes per step ÷ median plain step.',
    `decode: ${decodeOptions.rounds} interleaved plain/ROSE rounds after ${decodeOptions.warmupRounds} warm-up, prompt ${decodeOptions.promptTokens} tokens; prefill ${decodeOptions.prefillTokens} tokens × ${decodeOptions.prefillRuns}.`,
  ],
  tests,
  runs,
};
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `${machine}-${date}-gpu${reduced ? '-reduced' : ''}.json`);
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
lg(`wrote ${file}`);
const row = (r: GpuRun) =>
  `| ${r.dtype} | ${r.kernels} | ${r.dispatches_per_step} | ${r.submits_per_step} | ${r.readback_bytes_per_step} | ${r.plain_step_ms} | ${r.rose_step_ms} | ${r.gpu_ms_per_step ?? '—'} | ${r.prefill_tokens_per_second ?? '—'} | ${r.decode_weight_gbps} |`;
process.stdout.write(
  [
    `adapter: ${adapter.description}`,
    '| dtype | kernels | dispatches/step | submits/step | readback B/step | plain ms | ROSE ms | GPU ms/step | prefill tok/s | decode GB/s |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...runs.map(row),
    '',
  ].join('\n'),
);
if (tests && (tests.failed !== 0 || tests.exitCode !== 0)) process.exitCode = 1; // the figures are written either way
