/**
 * rose-ts benchmarks: kernels and decoding, ROSE against plain decoding, and against the memory
 * bandwidth bound, on the CPU and on WebGPU.
 *
 *   npm run bench              SmolLM2-135M's shapes (random f32 / bf16 weights built in memory)
 *   npm run bench:quick        a test fixture instead: seconds, for checking the harness
 *
 * Options: --quick, --machine NAME (default: the sanitised hostname), --threads N (CPU threads for
 * the multi-threaded runs; default os.availableParallelism()), --no-webgpu, --webgpu-dtypes f32,bf16,
 * --out DIR (default bench/results), --only OP[=N] (one op, or one variant of it: every registered
 * variant of OP on each backend, then the tables on stdout; nothing else runs and no file is written).
 *
 * Output: <out>/<machine>-<date>.json (one entry per backend configuration: backend, adapter,
 * rose_over_plain_step_ratio, matvec_fraction_of_stream_bandwidth, dispatches_per_step,
 * readback_bytes_per_step, peak_rss_mb, and the detailed figures) and <out>/<machine>-<date>.md.
 * Progress goes to stderr.
 *
 * Why decode is bounded by bandwidth: a decode step reads every weight once, so
 * tokens/s ≤ bandwidth ÷ bytes of weights per step; the batch of two (ROSE) reads them once for both
 * prompts, which is why a ROSE step should cost barely more than a plain one.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../src/kernels/backend.ts';
import { CpuBackend } from '../src/kernels/cpu/backend.ts';
import { openBackend } from '../src/kernels/select.ts';
import { runContrast } from './lib/contrast.ts';
import { runDecode, type DecodeOptions } from './lib/decode.ts';
import { measureDispatch } from './lib/dispatch.ts';
import { parseOnly, runKernelSuite, type KernelOptions } from './lib/kernels.ts';
import { buildSmolLM2, loadFixtureModel, type BenchModel } from './lib/model.ts';
import { kernelSections, toMarkdown, type BackendEntry, type Results } from './lib/report.ts';
import { measureSimdStream } from './lib/simdStream.ts';
import { measureStream } from './lib/stream.ts';
import { gc, log, round } from './lib/timing.ts';

// --- arguments ------------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const option = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
};
const quick = flag('quick');
const machine = (option('machine') ?? hostname()).replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 64) || 'machine';
const maxThreads = Number(option('threads') ?? availableParallelism());
const withWebGpu = !flag('no-webgpu');
const gpuDtypes = (option('webgpu-dtypes') ?? 'f32,bf16').split(',').filter((d) => d === 'f32' || d === 'bf16') as ('f32' | 'bf16')[];
const outDir = option('out') ?? join(import.meta.dirname, 'results');
const only = parseOnly(option('only'));
const FIXTURE = 'tiny-gqa-bf16-tied';

const started = new Date();
const date = started.toISOString().slice(0, 10);
const t0 = performance.now();

// --- settings: what each run costs ------------------------------------------------------------------
// Every registered variant of every op is timed (forced) beside the automatic choice. WebGPU on a
// software adapter: not in the decode sweep, where the reference kernel (v1) would take minutes.
const cpuKernel: Omit<KernelOptions, 'log'> = quick
  ? { iterations: 5, ctx: 32, prefillM: 16, variants: true, only }
  : { iterations: 3, ctx: 256, prefillM: 64, variants: true, only };
const gpuKernel: Omit<KernelOptions, 'log'> = quick
  ? { iterations: 3, ctx: 32, prefillM: 16, variants: true, sweepVariants: false, only }
  : {
      iterations: 2,
      ctx: 256,
      prefillM: 64,
      variants: true,
      sweepVariants: false,
      roles: ['q_proj', 'gate_proj', 'down_proj', 'lm_head'],
      rotateLayers: 4,
      only,
    };
const cpuDecode: Omit<DecodeOptions, 'log'> = quick
  ? { prefillTokens: 16, prefillRuns: 2, promptTokens: 8, rounds: 6, warmupRounds: 1, profileSteps: 2 }
  : { prefillTokens: 64, prefillRuns: 2, promptTokens: 32, rounds: 8, warmupRounds: 1, profileSteps: 3 };
// WebGPU on llvmpipe: a 2-token prompt keeps the decode caches' prefill (ROSE: M = 2·2 = 4) on the
// matvec path; the tiled prefill path costs ≈ 2 s per token there, so it is timed once, on f32 only.
const gpuDecode: Omit<DecodeOptions, 'log'> = quick
  ? { prefillTokens: 16, prefillRuns: 1, promptTokens: 8, rounds: 3, warmupRounds: 1, profileSteps: 0 }
  : { prefillTokens: 8, prefillRuns: 1, promptTokens: 2, rounds: 3, warmupRounds: 1, profileSteps: 0 };

const notes: string[] = [
  quick
    ? `QUICK run: the test fixture ${FIXTURE} (tiny shapes, weights in cache): checks the harness, the figures mean little.`
    : 'Model: SmolLM2-135M configuration (hidden 576, intermediate 1536, 30 layers, 9 heads / 3 kv heads, head_dim 64, vocab 49152, tied embeddings, rope_theta 1e5, eps 1e-5), deterministic random weights built in memory at bench time.',
  'Noisy machine: figures are medians (and bests) of few samples; ratios are taken within this run, plain and ROSE steps interleaved.',
  `CPU: decode steps ${cpuDecode.rounds} interleaved rounds after ${cpuDecode.warmupRounds} warm-up, prompt ${cpuDecode.promptTokens} tokens; prefill ${cpuDecode.prefillTokens} tokens × ${cpuDecode.prefillRuns} runs; kernels ${cpuKernel.iterations} timed iterations each (matvec sweeps ${Math.max(5, cpuKernel.iterations)}).`,
  `WebGPU: iteration counts kept SMALL for software adapters (llvmpipe): ${gpuDecode.rounds} timed decode steps each for plain and ROSE (after ${gpuDecode.warmupRounds} warm-up), decode prompt ${gpuDecode.promptTokens} tokens, prefill of ${gpuDecode.prefillTokens} tokens × ${gpuDecode.prefillRuns} (f32 only), kernels ${gpuKernel.iterations} iterations${gpuKernel.roles ? ` for ${gpuKernel.roles.join(', ')} only, decode shapes on ${gpuKernel.rotateLayers} layers` : ''}.`,
  'matvec_fraction_of_stream_bandwidth = GB/s of weights of the decode matvec sweep (every matmul of one step, M = 1, best pass) ÷ the SIMD stream-read GB/s (bench/lib/simdStream.ts) measured in this run with the same number of threads, for both CPU tiers (WebGPU on a software adapter: ÷ the all-threads SIMD stream, since that adapter runs on these cores).',
];

const loadAtStart = loadavg()[0];
if (loadAtStart > 0.5 * availableParallelism()) {
  notes.push(
    `The machine was BUSY when this run started (1-minute load average ${loadAtStart.toFixed(2)} on ${availableParallelism()} cores): other processes compete for the cores and memory, so absolute figures are low and multi-thread figures especially unreliable.`,
  );
}

/** After a backend is destroyed: let its workers exit, then collect, so the next RSS figures are its own. */
const settle = async () => {
  await new Promise((r) => setTimeout(r, 300));
  gc();
};

const lg = (s: string) => log(`[bench ${((performance.now() - t0) / 1000).toFixed(0)}s] ${s}`);

const modelFor = (be: Backend, dtype: 'f32' | 'bf16'): BenchModel => (quick ? loadFixtureModel(be, FIXTURE) : buildSmolLM2(be, dtype));
const threadCounts = [...new Set([1, maxThreads])];

// --- --only OP[=N]: that op's kernels alone, printed ---------------------------------------------------
if (only) {
  lg(`--only ${only.op}${only.variant === undefined ? '' : `=${only.variant}`}: the kernel figures alone, no results file`);
  const entries: BackendEntry[] = [];
  for (const threads of threadCounts) {
    const be = new CpuBackend({ threads, tier: 'ts' });
    try {
      const bm = modelFor(be, 'f32');
      const e = entryFrom(be, bm, quick ? 'bf16 (fixture, widened to f32)' : 'f32', threads, null);
      const k = await runKernelSuite(bm, { ...cpuKernel, log: lg });
      Object.assign(e.detail, { kernels: k.figures, sweeps: k.sweeps });
      entries.push(e);
    } finally {
      be.destroy();
      await settle();
    }
  }
  if (withWebGpu) {
    const be = await openBackend('webgpu', () => {});
    try {
      const dtype = gpuDtypes[0] ?? 'f32';
      const bm = modelFor(be, dtype);
      const e = entryFrom(be, bm, quick ? 'bf16 (fixture)' : dtype, null, null);
      const k = await runKernelSuite(bm, { ...gpuKernel, log: lg });
      Object.assign(e.detail, { kernels: k.figures, sweeps: k.sweeps, syncMs: k.syncMs });
      entries.push(e);
    } finally {
      be.destroy();
    }
  }
  process.stdout.write(`${kernelSections(entries).join('\n')}\n`);
  process.exit(0);
}

// --- 1. stream bandwidth, 2. dispatch cost ------------------------------------------------------------
lg(`machine ${machine}, ${cpus()[0]?.model ?? 'cpu'}, ${availableParallelism()} cores${quick ? ', QUICK' : ''}`);
const stream = await measureStream(quick ? 128 : 1024, quick ? 3 : 5, maxThreads);
lg(
  `stream: 1 thread ${stream.singleThreadGBps.toFixed(2)} GB/s, ${stream.threads} threads ${stream.allThreadsGBps.toFixed(2)} GB/s (best of ${stream.passes})`,
);
const simdStream = await measureSimdStream(quick ? 128 : 1024, quick ? 3 : 5, maxThreads);
lg(
  `SIMD stream: 1 thread ${simdStream.singleThreadGBps.toFixed(2)} GB/s, ${simdStream.threads} threads ${simdStream.allThreadsGBps.toFixed(2)} GB/s (best of ${simdStream.passes})`,
);
// Every CPU entry (both tiers) is held to the SIMD read: what the memory delivers, not what JS pulls.
const streamFor = (threads: number) =>
  threads === 1 ? simdStream.singleThreadGBps : threads === simdStream.threads ? simdStream.allThreadsGBps : null;

const probeConfig = quick ? loadFixtureModel(new CpuBackend({ tier: 'ts' }), FIXTURE).model.config : null;
const layers = quick ? probeConfig!.numHiddenLayers : 30;
const dispatch = await measureDispatch(maxThreads, 7 * layers + 1, quick ? 500 : 2000);
lg(`dispatch µs: ${JSON.stringify(dispatch.usPerDispatch)}`);

const backends: BackendEntry[] = [];

function entryFrom(be: Backend, bm: BenchModel, dtype: string, threads: number | null, streamRef: number | null): BackendEntry {
  return {
    backend: be.name,
    adapter: be.description,
    available: true,
    threads,
    dtype,
    model: bm.label,
    rose_over_plain_step_ratio: null,
    kernel_tier: be instanceof CpuBackend ? (be.tier === 'wasm' ? 'wasm-simd' : 'ts') : null,
    bf16_over_f32_plain_step_ratio: null,
    prefill_speedup_over_v3: null,
    plain_tokens_per_second: null,
    matvec_fraction_of_stream_bandwidth: null,
    matvec_m2_fraction_of_stream_bandwidth: null,
    decode_step_fraction_of_stream_bandwidth: null,
    stream_reference_gbps: streamRef === null ? null : round(streamRef),
    dispatches_per_step: null,
    submits_per_step: null,
    readback_bytes_per_step: null,
    gpu_ms_per_step: null,
    encode_ms_per_step: null,
    peak_rss_mb: null,
    weight_bytes_per_step: bm.weightBytesPerStep,
    detail: { notes: [] },
  };
}

function finish(e: BackendEntry): void {
  const d = e.detail.decode;
  const s1 = e.detail.sweeps?.find((s) => s.M === 1 && s.variant === 'auto');
  const s2 = e.detail.sweeps?.find((s) => s.M === 2 && s.variant === 'auto');
  const ref = e.stream_reference_gbps;
  if (d) {
    e.rose_over_plain_step_ratio = d.roseOverPlainStepRatio;
    e.dispatches_per_step = d.dispatchesPerStep;
    e.readback_bytes_per_step = d.readbackBytesPerStep;
    e.submits_per_step = d.submitsPerStep;
    e.gpu_ms_per_step = d.gpuTime?.stepMs ?? null;
    e.encode_ms_per_step = d.encodeMsPerStep;
    e.peak_rss_mb = d.peakRssMb;
    e.plain_tokens_per_second = round(1000 / d.plain.medianMs);
    if (ref) e.decode_step_fraction_of_stream_bandwidth = round(d.plain.weightGBps / ref);
  }
  if (ref && s1) e.matvec_fraction_of_stream_bandwidth = round(s1.gbps / ref);
  if (ref && s2) e.matvec_m2_fraction_of_stream_bandwidth = round(s2.gbps / ref);
}

// --- 3. CPU -------------------------------------------------------------------------------------------
for (const threads of threadCounts) {
  lg(`CPU, ${threads} thread(s): building the model`);
  const be = new CpuBackend({ threads, tier: 'ts' });
  try {
    const bm = modelFor(be, 'f32');
    const e = entryFrom(be, bm, quick ? 'bf16 (fixture, widened to f32)' : 'f32', threads, streamFor(threads));
    lg(`CPU ${threads}t: kernels`);
    const k = await runKernelSuite(bm, { ...cpuKernel, log: lg });
    e.detail.kernels = k.figures;
    e.detail.sweeps = k.sweeps;
    lg(`CPU ${threads}t: decode`);
    e.detail.decode = await runDecode(bm, { ...cpuDecode, log: lg });
    lg(
      `CPU ${threads}t: plain ${e.detail.decode.plain.medianMs} ms, ROSE ${e.detail.decode.rose.medianMs} ms, ratio ${e.detail.decode.roseOverPlainStepRatio}`,
    );
    if (threads === 1) {
      e.detail.contrast = await runContrast(be, bm.model.config.vocabSize, quick ? 20 : 30);
      lg(`CPU contrast: ${JSON.stringify(e.detail.contrast)}`);
    }
    e.detail.notes.push(
      'The CPU backend widens every weight to f32 at upload: f32 and bf16 checkpoints compute identically and read 4 bytes per weight.',
    );
    // The TypeScript tier's prefill IS v3 (auto takes v3 above 8 rows): the WebAssembly entries divide by this one.
    if (e.detail.decode.prefill) {
      e.prefill_speedup_over_v3 = 1;
      e.detail.notes.push('prefill_speedup_over_v3 = 1: this tier prefills with v3 itself.');
    }
    if (threads > 1)
      e.detail.notes.push(
        `dispatches_per_step = matmuls sent to the ${threads}-thread worker pool per ROSE step; the others ran inline (below minParallelWork).`,
      );
    else e.detail.notes.push('1 thread: no worker pool, dispatches_per_step = 0.');
    finish(e);
    backends.push(e);
  } finally {
    be.destroy();
    await settle();
  }
}
if (!quick) {
  // bf16 on the CPU: the same compute after widening; decode only, to show it.
  const threads = maxThreads;
  lg(`CPU, ${threads} thread(s), bf16 checkpoint: decode only`);
  const be = new CpuBackend({ threads, tier: 'ts' });
  try {
    const bm = modelFor(be, 'bf16');
    const e = entryFrom(be, bm, 'bf16 (widened to f32)', threads, streamFor(threads));
    e.detail.decode = await runDecode(bm, { ...cpuDecode, prefillRuns: 1, rounds: 5, profileSteps: 0, log: lg });
    e.detail.notes.push('Decode only: kernels are those of the f32 entry (weights are f32 after upload).');
    finish(e);
    const f32Entry = backends.find((b) => b.kernel_tier === 'ts' && b.threads === threads && b.dtype === 'f32');
    if (f32Entry?.detail.decode) {
      e.bf16_over_f32_plain_step_ratio = round(e.detail.decode.plain.medianMs / f32Entry.detail.decode.plain.medianMs);
      f32Entry.bf16_over_f32_plain_step_ratio = e.bf16_over_f32_plain_step_ratio;
      e.prefill_speedup_over_v3 = 1;
    }
    backends.push(e);
  } finally {
    be.destroy();
    await settle();
  }
}

// --- 3b. CPU, the WebAssembly SIMD tier: f32, then a bf16 checkpoint (kept at 2 bytes) -------------
for (const threads of threadCounts) {
  const tsEntry = backends.find((b) => b.kernel_tier === 'ts' && b.threads === threads && !b.dtype.includes('widened'));
  let f32Entry: BackendEntry | undefined;
  for (const dtype of quick ? (['f32'] as const) : (['f32', 'bf16'] as const)) {
    lg(`CPU WebAssembly SIMD, ${threads} thread(s), ${dtype}: building the model`);
    const be = new CpuBackend({ threads, tier: 'wasm' });
    try {
      const bm = modelFor(be, dtype);
      const e = entryFrom(be, bm, quick ? 'bf16 (fixture, stored dtype)' : dtype, threads, streamFor(threads));
      lg(`CPU wasm ${threads}t ${dtype}: kernels`);
      const k = await runKernelSuite(bm, { ...cpuKernel, variants: false, log: lg });
      e.detail.kernels = k.figures;
      e.detail.sweeps = k.sweeps;
      lg(`CPU wasm ${threads}t ${dtype}: decode`);
      e.detail.decode = await runDecode(bm, { ...cpuDecode, log: lg });
      lg(
        `CPU wasm ${threads}t ${dtype}: plain ${e.detail.decode.plain.medianMs} ms, ROSE ${e.detail.decode.rose.medianMs} ms, ratio ${e.detail.decode.roseOverPlainStepRatio}`,
      );
      if (threads === 1 && dtype === 'f32') {
        e.detail.contrast = await runContrast(be, bm.model.config.vocabSize, quick ? 20 : 30);
      }
      e.detail.notes.push(
        'WebAssembly SIMD tier: matmuls in src/kernels/cpu/wasm/ (v4 matvec for M ≤ 8, v5 tiled above), weights in their stored dtype; attention and contrastSoftmax v2 in WebAssembly too; the other ops are the TypeScript twins on views of the same memory.',
      );
      finish(e);
      const tsPrefill = tsEntry?.detail.decode?.prefill?.tokensPerSecond;
      const prefill = e.detail.decode.prefill?.tokensPerSecond;
      // Both dtypes against the TypeScript tier's f32 prefill: that tier computes a bf16 checkpoint as f32 (widened at upload).
      if (tsPrefill && prefill) e.prefill_speedup_over_v3 = round(prefill / tsPrefill);
      if (dtype === 'f32') f32Entry = e;
      else if (f32Entry?.detail.decode) {
        e.bf16_over_f32_plain_step_ratio = round(e.detail.decode.plain.medianMs / f32Entry.detail.decode.plain.medianMs);
        f32Entry.bf16_over_f32_plain_step_ratio = e.bf16_over_f32_plain_step_ratio;
        e.detail.notes.push('bf16_over_f32_plain_step_ratio: medians of the two entries, measured one after the other in this run.');
      }
      backends.push(e);
    } finally {
      be.destroy();
      await settle();
    }
  }
}

// --- 4. WebGPU ----------------------------------------------------------------------------------------
if (withWebGpu) {
  for (const dtype of quick ? (['f32'] as const) : gpuDtypes) {
    let be: Backend | undefined;
    try {
      lg(`WebGPU ${dtype}: opening the adapter`);
      be = await openBackend('webgpu', () => {});
    } catch (err) {
      const msg = (err as Error).message;
      lg(`WebGPU unavailable: ${msg}`);
      backends.push({
        backend: 'webgpu',
        adapter: 'unavailable',
        available: false,
        error: msg,
        threads: null,
        dtype,
        model: '',
        rose_over_plain_step_ratio: null,
        kernel_tier: null,
        bf16_over_f32_plain_step_ratio: null,
        prefill_speedup_over_v3: null,
        plain_tokens_per_second: null,
        matvec_fraction_of_stream_bandwidth: null,
        matvec_m2_fraction_of_stream_bandwidth: null,
        decode_step_fraction_of_stream_bandwidth: null,
        stream_reference_gbps: null,
        dispatches_per_step: null,
        submits_per_step: null,
        readback_bytes_per_step: null,
        gpu_ms_per_step: null,
        encode_ms_per_step: null,
        peak_rss_mb: null,
        weight_bytes_per_step: null,
        detail: { notes: ['WebGPU could not be opened: every WebGPU figure is missing from this run.'] },
      });
      break;
    }
    try {
      const software = /llvmpipe|lavapipe|swiftshader|software/i.test(be.description);
      const bm = modelFor(be, dtype);
      const e = entryFrom(be, bm, quick ? 'bf16 (fixture)' : dtype, null, software ? simdStream.allThreadsGBps : null);
      lg(`WebGPU ${dtype}: kernels (${be.description.slice(0, 80)}…)`);
      const k = await runKernelSuite(bm, { ...gpuKernel, log: lg });
      e.detail.kernels = k.figures;
      e.detail.sweeps = k.sweeps;
      e.detail.syncMs = k.syncMs;
      lg(`WebGPU ${dtype}: decode`);
      e.detail.decode = await runDecode(bm, { ...gpuDecode, prefillRuns: dtype === 'f32' ? gpuDecode.prefillRuns : 0, log: lg });
      lg(
        `WebGPU ${dtype}: plain ${e.detail.decode.plain.medianMs} ms, ROSE ${e.detail.decode.rose.medianMs} ms, ratio ${e.detail.decode.roseOverPlainStepRatio}`,
      );
      e.detail.contrast = await runContrast(be, bm.model.config.vocabSize, 3);
      e.detail.notes.push(
        software
          ? 'Software adapter: the "GPU" runs on the CPU cores, so its bandwidth fraction is against the all-threads CPU stream.'
          : 'Hardware adapter: no stream-bandwidth reference is measured for its memory; see GB/s.',
        'dispatches_per_step / submits_per_step / readback_bytes_per_step are the backend counters (stats) over one ROSE step; gpu_ms_per_step is its GPU time from timestamp queries where the adapter has them (per kernel: detail.decode.gpuTime); encode_ms_per_step is the CPU time inside model.forward, which only records commands.',
      );
      finish(e);
      backends.push(e);
    } catch (err) {
      lg(`WebGPU ${dtype} failed: ${(err as Error).stack}`);
      backends.push({
        ...entryFrom(be, { model: undefined as never, label: '', weightBytesPerStep: 0, macsPerToken: 0 }, dtype, null, null),
        available: false,
        error: (err as Error).message,
      });
    } finally {
      be.destroy();
      await settle();
    }
  }
} else {
  notes.push('WebGPU skipped (--no-webgpu).');
}

// --- 5. goals, output ------------------------------------------------------------------------------------
const cpu1 = backends.find((b) => b.kernel_tier === 'ts' && b.threads === 1);
const cpuT = backends.find((b) => b.kernel_tier === 'ts' && b.threads === maxThreads && b.dtype.startsWith(quick ? 'bf16' : 'f32'));
const gpus = backends.filter((b) => b.backend === 'webgpu' && b.available);
const sweep = (b: BackendEntry | undefined, M: number) => b?.detail.sweeps?.find((s) => s.M === M && s.variant === 'auto');
const goals: Results['goals'] = [];
// The WebAssembly tier's goals (issue 12), each from this run.
for (const b of backends.filter((x) => x.kernel_tier === 'wasm-simd')) {
  const tag = `wasm ${b.threads}t ${b.dtype}`;
  if (b.rose_over_plain_step_ratio !== null)
    goals.push({
      goal: `ROSE step / plain step ≤ 1.10 (${tag})`,
      figure: String(b.rose_over_plain_step_ratio),
      met: b.rose_over_plain_step_ratio <= 1.1,
    });
  if (b.dtype === 'f32' && b.matvec_fraction_of_stream_bandwidth !== null)
    goals.push({
      goal: `decode matvec M = 1 ≥ 80% of the SIMD stream read (${tag})`,
      figure: `${sweep(b, 1)?.gbps} GB/s ÷ ${b.stream_reference_gbps} GB/s = ${b.matvec_fraction_of_stream_bandwidth}`,
      met: b.matvec_fraction_of_stream_bandwidth >= 0.8,
    });
  if (b.dtype === 'bf16' && b.bf16_over_f32_plain_step_ratio !== null)
    goals.push({
      goal: `bf16 plain step ≤ 0.65 × f32 (${tag}); peak RSS ≈ stored size`,
      figure: `${b.bf16_over_f32_plain_step_ratio}; peak RSS ${b.peak_rss_mb} MB for ${round((b.weight_bytes_per_step ?? 0) / 2 ** 20)} MiB of weights`,
      met: b.bf16_over_f32_plain_step_ratio <= 0.65,
    });
  if (b.prefill_speedup_over_v3 !== null)
    goals.push({ goal: `prefill ≥ 3× v3 (${tag})`, figure: String(b.prefill_speedup_over_v3), met: b.prefill_speedup_over_v3 >= 3 });
  if (b.dtype === 'f32' && b.threads === 1 && b.plain_tokens_per_second !== null)
    goals.push({
      goal: "plain decoding ≈ 15 tok/s on one thread (SmolLM2-135M f32; llama.cpp 20 tok/s on the issue's machine)",
      figure: `${b.plain_tokens_per_second} tok/s (1000 ÷ the plain step: forward + the fused decision, as rose generate runs it)`,
      met: quick ? null : b.plain_tokens_per_second >= 15,
    });
}
for (const b of [cpu1, cpuT, ...gpus]) {
  if (!b || b.rose_over_plain_step_ratio === null) continue;
  goals.push({
    goal: `ROSE step / plain step ≤ 1.10 (${b.backend}${b.threads ? ` ${b.threads}t` : ''} ${b.dtype})`,
    figure: `${b.rose_over_plain_step_ratio} (best steps: ${b.detail.decode?.roseOverPlainBestStepRatio})`,
    met: b.rose_over_plain_step_ratio <= 1.1,
  });
}
if (cpu1?.matvec_fraction_of_stream_bandwidth != null) {
  goals.push({
    goal: 'decode matvec ≥ 60% of stream-read bandwidth, 1 thread',
    figure: `${sweep(cpu1, 1)?.gbps} GB/s ÷ ${cpu1.stream_reference_gbps} GB/s = ${cpu1.matvec_fraction_of_stream_bandwidth}`,
    met: cpu1.matvec_fraction_of_stream_bandwidth >= 0.6,
  });
}
if (cpu1 && cpuT && cpuT !== cpu1) {
  const s1 = sweep(cpu1, 1)?.gbps ?? NaN,
    sT = sweep(cpuT, 1)?.gbps ?? NaN;
  const d1 = cpu1.detail.decode?.plain.medianMs ?? NaN,
    dT = cpuT.detail.decode?.plain.medianMs ?? NaN;
  const streamScale = simdStream.allThreadsGBps / simdStream.singleThreadGBps;
  goals.push({
    goal: `close to linear in threads (1 → ${maxThreads}): ≥ 0.8 × ${maxThreads} on the matvec sweep`,
    figure: `matvec sweep ×${round(sT / s1)}, plain decode step ×${round(d1 / dT)}, prefill ×${round((cpuT.detail.decode?.prefill?.tokensPerSecond ?? NaN) / (cpu1.detail.decode?.prefill?.tokensPerSecond ?? NaN))}; the stream read itself scales ×${round(streamScale)}`,
    met: sT / s1 >= 0.8 * maxThreads,
  });
}

const results: Results = {
  schema: 1,
  machine,
  date,
  startedAt: started.toISOString(),
  wallSeconds: round((performance.now() - t0) / 1000),
  quick,
  node: process.versions.node,
  cpu: { model: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), totalMemGiB: round(totalmem() / 2 ** 30) },
  loadAverage: { atStart: round(loadAtStart), atEnd: round(loadavg()[0]) },
  notes,
  stream,
  simdStream,
  dispatch,
  backends,
  goals,
};
mkdirSync(outDir, { recursive: true });
const base = join(outDir, `${machine}-${date}${quick ? '-quick' : ''}`);
writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(`${base}.md`, `${toMarkdown(results)}\n`);
lg(`wrote ${base}.json and ${base}.md`);
process.stdout.write(`${toMarkdown(results)}\n`);
