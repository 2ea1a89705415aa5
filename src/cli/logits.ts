/** `rose logits`: the oracle. Rows run as one batch; each row's real positions are written as F32. */
import { performance } from 'node:perf_hooks';
import type { BackendKind } from '../kernels/select.ts';
import { openBackend } from '../kernels/select.ts';
import { loadLlama } from '../model/load.ts';
import { writeSafetensors } from '../model/safetensors.ts';
import { HiddenStateCapture, type LayerRange } from '../oracle/hiddenStates.ts';

export interface LogitsOptions {
  model: string;
  ids: number[][];
  backend: BackendKind;
  out: string;
  threads?: number;
  /** Also write hidden.<row>.<k> and normed.<row> (src/oracle/hiddenStates.ts); `layers` implies it. */
  hiddenStates?: boolean;
  layers?: LayerRange;
}

export async function logitsCommand(opts: LogitsOptions): Promise<string> {
  // The oracle keeps the CPU's TypeScript tier: f64 sums, bit-identical to v1 on any thread count, the
  // most accurate reference rose-ts has (the WebAssembly tier sums in f32 lanes).
  const backend = await openBackend(opts.backend, undefined, { threads: opts.threads, cpuTier: 'ts' });
  try {
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
    return `rose logits: ${opts.ids.length} row(s) of ${opts.ids.map((r) => r.length).join(', ')} tokens × vocab ${V} → ${opts.out} in ${seconds.toFixed(3)} s on ${backend.description}; last-position argmax ${lastArgmax.join(', ')}${capture ? `; hidden states ${capture.describe()}` : ''}`;
  } finally {
    backend.destroy();
  }
}
