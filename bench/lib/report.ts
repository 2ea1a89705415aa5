/** The results file's shape, and its markdown rendering. */
import type { ContrastFigures } from './contrast.ts';
import type { DecodeResult } from './decode.ts';
import type { DispatchResult } from './dispatch.ts';
import type { KernelFigure, SweepFigure } from './kernels.ts';
import type { StreamResult } from './stream.ts';

export interface BackendEntry {
  backend: 'cpu' | 'webgpu';
  /** The backend's description: CPU threads and variant, or the WebGPU adapter. */
  adapter: string;
  available: boolean;
  error?: string;
  threads: number | null;
  dtype: string;
  model: string;
  rose_over_plain_step_ratio: number | null;
  /** CPU entries: which kernels ran, 'wasm-simd' (src/kernels/cpu/wasm/) or 'ts'; null for WebGPU. */
  kernel_tier: 'wasm-simd' | 'ts' | null;
  /** WebAssembly tier: the bf16 checkpoint's plain step ÷ the f32 one's (same run, same threads). */
  bf16_over_f32_plain_step_ratio: number | null;
  /** WebAssembly tier: prefill tokens/s ÷ the TypeScript tier's (v3 above 8 rows), same run and threads. */
  prefill_speedup_over_v3: number | null;
  /** 1000 ÷ plain step ms: the tokens/s of plain greedy decoding (what `rose generate --compare` reports). */
  plain_tokens_per_second: number | null;
  /** Decode matvec GB/s (all matmuls of a step, M = 1) ÷ stream-read GB/s with the same threads. */
  matvec_fraction_of_stream_bandwidth: number | null;
  /** The same at M = 2 (ROSE's batch). */
  matvec_m2_fraction_of_stream_bandwidth: number | null;
  /** Weight bytes per step ÷ plain decode step time, ÷ stream bandwidth: the whole step, not just matmuls. */
  decode_step_fraction_of_stream_bandwidth: number | null;
  stream_reference_gbps: number | null;
  dispatches_per_step: number | null;
  /** WebGPU: queue submits per ROSE step (1 outside --trace). */
  submits_per_step: number | null;
  readback_bytes_per_step: number | null;
  /** WebGPU with timestamp queries: GPU ms of a ROSE step (per kernel in detail.decode.gpuTime). */
  gpu_ms_per_step: number | null;
  encode_ms_per_step: number | null;
  peak_rss_mb: number | null;
  weight_bytes_per_step: number | null;
  detail: {
    decode?: DecodeResult;
    sweeps?: SweepFigure[];
    kernels?: KernelFigure[];
    syncMs?: number;
    contrast?: ContrastFigures;
    notes: string[];
  };
}

export interface Results {
  schema: 1;
  machine: string;
  date: string;
  startedAt: string;
  wallSeconds: number;
  quick: boolean;
  node: string;
  cpu: { model: string; cores: number; totalMemGiB: number };
  /** 1-minute load average (all processes) when the run started and ended. */
  loadAverage: { atStart: number; atEnd: number };
  notes: string[];
  stream: StreamResult;
  /** The SIMD stream read (bench/lib/simdStream.ts): the CPU entries' bandwidth reference. */
  simdStream: StreamResult;
  dispatch: DispatchResult;
  backends: BackendEntry[];
  goals: { goal: string; figure: string; met: boolean | null }[];
}

const f = (x: number | null | undefined, digits = 3): string =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : String(Number(x.toPrecision(digits)));
const table = (head: string[], rows: (string | number)[][]): string =>
  [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');

export function toMarkdown(r: Results): string {
  const out: string[] = [];
  out.push(`# rose-ts benchmarks — ${r.machine}, ${r.date}${r.quick ? ' (quick)' : ''}`);
  out.push('');
  out.push(
    `${r.cpu.model}, ${r.cpu.cores} cores, ${r.cpu.totalMemGiB} GiB, Node ${r.node}. Run took ${r.wallSeconds.toFixed(0)} s; load average ${r.loadAverage.atStart} at the start, ${r.loadAverage.atEnd} at the end.`,
  );
  out.push('');
  for (const n of r.notes) out.push(`- ${n}`);
  out.push('');

  out.push('## Summary (ratios are from the same run; steps interleaved plain/ROSE)');
  out.push('');
  out.push(
    table(
      [
        'backend',
        'tier',
        'threads',
        'dtype',
        'plain step ms',
        'ROSE step ms',
        'ROSE/plain',
        'matvec GB/s (M=1)',
        'matvec ÷ stream',
        'prefill tok/s',
        'dispatches/step',
        'submits/step',
        'readback B/step',
        'GPU ms/step',
        'encode ms/step',
        'peak RSS MB',
      ],
      r.backends.map((b) => {
        const d = b.detail.decode;
        const sweep = b.detail.sweeps?.find((s) => s.M === 1 && s.variant === 'auto');
        if (!b.available)
          return [b.backend, '—', '—', b.dtype, `unavailable: ${b.error ?? ''}`, '', '', '', '', '', '', '', '', '', '', ''];
        return [
          b.backend,
          b.kernel_tier ?? '—',
          b.threads ?? '—',
          b.dtype,
          f(d?.plain.medianMs),
          f(d?.rose.medianMs),
          f(b.rose_over_plain_step_ratio),
          f(sweep?.gbps),
          f(b.matvec_fraction_of_stream_bandwidth),
          f(d?.prefill?.tokensPerSecond),
          f(b.dispatches_per_step),
          f(b.submits_per_step),
          f(b.readback_bytes_per_step),
          f(b.gpu_ms_per_step),
          f(b.encode_ms_per_step),
          f(b.peak_rss_mb),
        ];
      }),
    ),
  );
  out.push('');
  out.push('Adapters:');
  for (const b of r.backends) out.push(`- ${b.backend}${b.dtype ? ` ${b.dtype}` : ''}: ${b.adapter}`);
  out.push('');

  const timed = r.backends.filter((b) => b.detail.decode?.gpuTime);
  if (timed.length) {
    out.push('## GPU time per kernel (one ROSE step, each dispatch timed in a pass of its own)');
    out.push('');
    for (const b of timed) {
      const g = b.detail.decode!.gpuTime!;
      out.push(
        `${b.backend} ${b.dtype}: ${f(g.stepMs)} ms per step as one pass (median of ${g.steps}); Σ kernels ${f(g.kernelsSumMs)} ms.`,
      );
      out.push('');
      out.push(
        table(
          ['kernel', 'dispatches', 'GPU ms'],
          g.kernels.map((k) => [k.kernel, k.dispatches, f(k.ms)]),
        ),
      );
      out.push('');
    }
  }
  for (const b of r.backends)
    if (b.detail.decode && !b.detail.decode.gpuTime && b.backend === 'webgpu') out.push(`- ${b.dtype}: ${b.detail.decode.gpuTimeNote}`);
  out.push('');

  out.push('## Goals');
  out.push('');
  out.push(
    table(
      ['goal', 'measured', 'met'],
      r.goals.map((g) => [g.goal, g.figure, g.met === null ? 'n/a' : g.met ? 'yes' : 'no']),
    ),
  );
  out.push('');

  out.push('## Stream-read bandwidth (best of passes); the CPU entries are held to the SIMD read');
  out.push('');
  out.push(
    table(
      ['read', 'buffer', 'passes', '1 thread GB/s (best / median)', `${r.stream.threads} threads GB/s (best / median)`],
      (
        [
          ['WebAssembly SIMD (v128 sum)', r.simdStream],
          ['JavaScript (Float32Array sum)', r.stream],
        ] as const
      ).map(([what, st]) => [
        what,
        `${(st.bytes / 2 ** 20).toFixed(0)} MiB`,
        st.passes,
        `${f(st.singleThreadGBps)} / ${f(st.singleThreadMedianGBps)}`,
        `${f(st.allThreadsGBps)} / ${f(st.allThreadsMedianGBps)}`,
      ]),
    ),
  );
  out.push('');

  out.push(`## Worker-pool dispatch: µs per empty dispatch (${r.dispatch.threads} threads)`);
  out.push('');
  out.push(
    `The pool's default spin ('auto') was ${r.dispatch.autoSpinMicros} µs in this run (50 on a quiet machine, 0 when other processes keep the cores busy).`,
  );
  out.push('');
  const u = r.dispatch.usPerDispatch;
  out.push(
    table(
      ['method', 'µs / dispatch', `ms per decode step (× ${r.dispatch.matmulsPerStep} matmuls)`],
      (Object.keys(u) as (keyof typeof u)[]).map((k) => [k, f(u[k]), f((u[k] * r.dispatch.matmulsPerStep) / 1000)]),
    ),
  );
  out.push('');

  out.push(...kernelSections(r.backends));

  const contrasts = r.backends.filter((b) => b.available && b.detail.contrast);

  if (contrasts.length) {
    out.push('## Fused contrast + softmax against separate passes (B = 2)');
    out.push('');
    out.push(
      table(
        ['backend', 'V', 'fused op ms', 'one-pass online ms', 'separate ms', 'separate ÷ fused op', 'note'],
        contrasts.map((b) => {
          const c = b.detail.contrast!;
          return [b.backend, c.V, f(c.fusedMs), f(c.fusedOnlineMs), f(c.separateMs), f(c.speedup), c.note];
        }),
      ),
    );
    out.push('');
  }

  const profiled = r.backends.filter((b) => b.available && b.detail.decode?.opProfile);
  for (const b of profiled) {
    out.push(
      `## Where a decode step's time goes: ${b.backend}${b.kernel_tier ? ` ${b.kernel_tier}` : ''}, ${b.threads} thread(s), ${b.dtype}, ms per step by op`,
    );
    out.push('');
    out.push(
      table(
        ['op', 'plain (B=1)', 'ROSE (B=2)', 'ROSE − plain'],
        b.detail.decode!.opProfile!.map((o) => [o.op, f(o.plainMs), f(o.roseMs), f(o.roseMs - o.plainMs)]),
      ),
    );
    out.push('');
  }

  for (const b of r.backends) {
    if (b.detail.notes.length === 0) continue;
    out.push(`Notes, ${b.backend}${b.kernel_tier ? ` ${b.kernel_tier}` : ''}${b.threads ? ` ${b.threads} thread(s)` : ''} ${b.dtype}:`);
    for (const n of b.detail.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

/** The matvec sweeps and per-kernel tables of every backend (also printed alone by `npm run bench -- --only op`). */
export function kernelSections(backends: readonly BackendEntry[]): string[] {
  const out: string[] = [];
  const cpuSweeps = backends.filter((b) => b.available && b.detail.sweeps?.length);
  if (cpuSweeps.length) {
    out.push('## Decode matvec sweep: every matmul of one step (all layers + lm_head), by variant and threads');
    out.push('');
    out.push(
      table(
        ['backend', 'dtype', 'threads', 'M', 'variant', 'ms (median)', 'GB/s (best)', 'GFLOP/s (best)', '÷ stream'],
        cpuSweeps.flatMap((b) =>
          b.detail.sweeps!.map((s) => [
            b.backend,
            b.dtype,
            s.threads ?? '—',
            s.M,
            s.variant,
            f(s.ms),
            f(s.gbps),
            f(s.gflops),
            b.stream_reference_gbps ? f(s.gbps / b.stream_reference_gbps) : '—',
          ]),
        ),
      ),
    );
    out.push('');
  }

  for (const b of backends) {
    if (!b.available || !b.detail.kernels?.length) continue;
    out.push(
      `## Kernels: ${b.backend}${b.threads ? `, ${b.threads} thread(s)` : ''}, ${b.dtype}${b.detail.syncMs ? ` (read-back sync of ${f(b.detail.syncMs)} ms subtracted)` : ''}`,
    );
    out.push('');
    out.push(
      table(
        ['kernel', 'shape', 'variant', 'ms (median)', 'ms (best)', 'GFLOP/s', 'GB/s'],
        b.detail.kernels.map((k) => [k.kernel, k.shape, k.variant, f(k.ms), f(k.bestMs), f(k.gflops), f(k.gbps)]),
      ),
    );
    out.push('');
  }

  return out;
}
