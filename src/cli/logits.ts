/** `rose logits`: the oracle. Rows run as one batch; each row's real positions are written as F32. */
import { performance } from 'node:perf_hooks';
import type { KernelChoice } from '../kernels/registry.ts';
import { RoseError } from '../errors.ts';
import type { BackendKind, CpuTierChoice } from '../kernels/select.ts';
import { openBackend, summarizeBackend } from '../kernels/select.ts';
import { loadLlamaConfig } from '../model/config.ts';
import { loadLlama } from '../model/load.ts';
import { SafetensorsCheckpoint, writeSafetensors } from '../model/safetensors.ts';
import { HiddenStateCapture, type LayerRange } from '../oracle/hiddenStates.ts';
import { checkThreadsUsable, type Given } from './usage.ts';

export interface LogitsOptions {
  model: string;
  ids: number[][];
  backend: BackendKind;
  /** A file, a character device or FIFO (written through), or '-' for stdout. */
  out: string;
  threads?: number;
  cpuTier?: CpuTierChoice;
  kernel?: KernelChoice;
  /** Write logits that hold NaN or Inf, with a warning, instead of failing. */
  allowNonfinite?: boolean;
  verbose?: boolean;
  /** Also write hidden.<row>.<k> and normed.<row> (src/oracle/hiddenStates.ts); `layers` implies it. */
  hiddenStates?: boolean;
  layers?: LayerRange;
}

/** Non-finite values of one row's logits (T_row, V): how many, and where the first one is. */
export interface NonFinite {
  count: number;
  position: number;
  vocabId: number;
}

export function findNonFinite(logits: Float32Array, V: number): NonFinite | null {
  let count = 0;
  let first = -1;
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) {
      if (first < 0) first = i;
      count++;
    }
  }
  return first < 0 ? null : { count, position: Math.floor(first / V), vocabId: first % V };
}

const err = (s: string) => process.stderr.write(s);

export async function logitsCommand(opts: LogitsOptions, given: Given = () => false): Promise<void> {
  checkThreadsUsable(opts.backend, given);
  // Cheap checks before a GPU is started: the folder, its headers, and the ids against the vocab.
  const config = loadLlamaConfig(opts.model);
  SafetensorsCheckpoint.open(opts.model).close();
  for (const [r, row] of opts.ids.entries()) {
    const bad = row.find((id) => id >= config.vocabSize);
    if (bad !== undefined)
      throw new RoseError('INPUT', `token id ${bad} is out of range: this model's vocab has ${config.vocabSize} ids (row ${r})`);
  }
  // The oracle keeps the CPU's TypeScript tier unless told otherwise (--cpu-tier): f64 sums,
  // bit-identical to v1 on any thread count, the most accurate reference rose-ts has (the WebAssembly
  // tier sums in f32 lanes), and what the README's rose diff worked example compares against.
  const backend = await openBackend(opts.backend, undefined, {
    threads: opts.threads,
    cpuTier: opts.cpuTier ?? 'ts',
    kernels: opts.kernel,
    note: opts.verbose ? (l) => err(`${l}\n`) : undefined,
  });
  try {
    if (opts.verbose) err(`rose: ${backend.description}\n`);
    const model = loadLlama(opts.model, backend);
    const V = model.config.vocabSize;
    const start = performance.now();
    const capture =
      opts.hiddenStates || opts.layers ? new HiddenStateCapture(backend, model.config.numHiddenLayers, opts.layers) : undefined;
    const cache = model.newKvCache(opts.ids.length, Math.max(...opts.ids.map((r) => r.length)));
    const { T, logits } = model.prefill(cache, opts.ids, true, capture?.observe);
    const all = await backend.read(logits); // (B·T, V), rows left-padded to T
    const seconds = (performance.now() - start) / 1000;
    const tensors = opts.ids.map((row, b) => {
      const real = all.slice((b * T + T - row.length) * V, (b + 1) * T * V); // (T_row, V)
      return { name: `logits.${b}`, dtype: 'F32' as const, shape: [row.length, V], data: new Uint8Array(real.buffer) };
    });

    // An oracle must not hand back garbage quietly: NaN or Inf fails the command unless asked for.
    for (const [b, t] of tensors.entries()) {
      const bad = findNonFinite(new Float32Array(t.data.buffer), V);
      if (!bad) continue;
      const what = `logits row ${b} holds ${bad.count} non-finite value(s) (NaN or Inf), the first at position ${bad.position} (vocab id ${bad.vocabId})`;
      if (!opts.allowNonfinite)
        throw new RoseError(
          'NUMERIC',
          `${what}; nothing was written`,
          'the checkpoint may hold NaN/Inf weights or overflow f32; pass --allow-nonfinite to write the logits anyway',
        );
      err(`rose logits: WARNING: ${what}; writing them as asked (--allow-nonfinite)\n`);
    }

    const hidden = capture ? await capture.tensors(opts.ids, T) : [];
    writeSafetensors(opts.out, [...tensors, ...hidden], {
      producer: 'rose-ts',
      backend: backend.description,
      rows: JSON.stringify(opts.ids),
    });
    const lastArgmax = tensors.map((t, b) => {
      const real = new Float32Array(t.data.buffer);
      const lastRow = real.subarray((opts.ids[b].length - 1) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (lastRow[v] > lastRow[best]) best = v;
      return best;
    });
    const line = `rose logits: ${opts.ids.length} row(s) of ${opts.ids.map((r) => r.length).join(', ')} tokens × vocab ${V} → ${opts.out === '-' ? 'stdout' : opts.out} in ${seconds.toFixed(3)} s on ${summarizeBackend(backend).label}; last-position argmax ${lastArgmax.join(', ')}${capture ? `; hidden states ${capture.describe()}` : ''}\n`;
    // With --out -, stdout carries the file: the summary goes to stderr.
    (opts.out === '-' ? process.stderr : process.stdout).write(line);
  } finally {
    backend.destroy();
  }
}
