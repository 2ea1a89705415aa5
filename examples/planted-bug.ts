/**
 * "Another backend" with one planted bug, for trying `rose diff` (README: "Checking another backend").
 *
 * It is the CPU backend with one kernel call changed in ONE layer, and it dumps what `rose logits
 * --hidden-states` dumps (logits.<row>, hidden.<row>.<k>, normed.<row>), so `rose diff` can say where
 * its numbers leave the reference:
 *
 *   --bug rope   layer k's RoPE pairs neighbours (2i, 2i+1), Meta's original layout, instead of
 *                (i, i + hd/2), the Hugging Face layout the checkpoint was trained with
 *   --bug eps    layer k's input RMSNorm drops its eps (x / sqrt(mean(x²)) instead of + eps)
 *
 *   npx tsx examples/planted-bug.ts --model DIR --ids 1,2,3 [--ids …] --bug rope --layer 2 --out other.safetensors
 */
import { Command, Option } from 'commander';
import { parseIds, parseLayers } from '../src/cli/main.ts';
import type { Tensor, Weight } from '../src/kernels/backend.ts';
import { CpuBackend, type CpuTensor } from '../src/kernels/cpu/backend.ts';
import { loadLlama } from '../src/model/load.ts';
import { writeSafetensors } from '../src/model/safetensors.ts';
import { HiddenStateCapture } from '../src/oracle/hiddenStates.ts';

export type PlantedBug = 'rope' | 'eps';

/** The CPU backend, except for one kernel call in layer `layer` (1-based, as hidden.<row>.<layer>). */
export class PlantedBugBackend extends CpuBackend {
  private ropeCalls = 0;
  private normCalls = 0;

  constructor(
    readonly bug: PlantedBug,
    readonly layer: number,
  ) {
    super({ tier: 'ts' }); // the reference tier, as rose logits: layers without the bug match it bit for bit
  }

  override rope(x: Tensor, table: Tensor, positions: Int32Array, heads: number): void {
    const layer = Math.floor(this.ropeCalls++ / 2) + 1; // two calls per layer: q, then k
    if (this.bug !== 'rope' || layer !== this.layer) {
      super.rope(x, table, positions, heads);
      return;
    }
    const data = (x as CpuTensor).data; // (M, heads·hd)
    const cosSin = (table as CpuTensor).data; // (P, hd) = [cos | sin]
    const hd = x.shape[1] / heads;
    for (let m = 0; m < positions.length; m++) {
      const cos = positions[m] * hd;
      const sin = cos + hd / 2;
      for (let h = 0; h < heads; h++) {
        const off = (m * heads + h) * hd;
        for (let i = 0; i < hd / 2; i++) {
          const a = data[off + 2 * i]; // the bug: neighbours, not i and i + hd/2
          const b = data[off + 2 * i + 1];
          data[off + 2 * i] = a * cosSin[cos + i] - b * cosSin[sin + i];
          data[off + 2 * i + 1] = b * cosSin[cos + i] + a * cosSin[sin + i];
        }
      }
    }
  }

  override rmsnorm(out: Tensor, x: Tensor, w: Weight, eps: number): void {
    const call = this.normCalls++; // two per layer (input, post-attention), then the final norm
    const inputNormOfBuggyLayer = call === 2 * (this.layer - 1);
    super.rmsnorm(out, x, w, this.bug === 'eps' && inputNormOfBuggyLayer ? 0 : eps);
  }
}

/** Runs the rows through the buggy backend and writes the dump; returns the tensor names written. */
export async function writePlantedBugDump(model: string, ids: number[][], bug: PlantedBug, layer: number, out: string): Promise<string[]> {
  const backend = new PlantedBugBackend(bug, layer);
  const llama = loadLlama(model, backend);
  const V = llama.config.vocabSize;
  const capture = new HiddenStateCapture(backend, llama.config.numHiddenLayers);
  const cache = llama.newKvCache(ids.length, Math.max(...ids.map((r) => r.length)));
  const { T, logits } = llama.prefill(cache, ids, true, capture.observe);
  const all = await backend.read(logits); // (B·T, V)
  const tensors = ids.map((row, b) => {
    const real = all.slice((b * T + T - row.length) * V, (b + 1) * T * V); // (T_row, V)
    return { name: `logits.${b}`, dtype: 'F32' as const, shape: [row.length, V], data: new Uint8Array(real.buffer) };
  });
  const hidden = await capture.tensors(ids, T);
  writeSafetensors(out, [...tensors, ...hidden], {
    producer: `examples/planted-bug.ts --bug ${bug} --layer ${layer}`,
    backend: backend.description,
    rows: JSON.stringify(ids),
  });
  backend.destroy();
  return [...tensors, ...hidden].map((t) => t.name);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = new Command()
    .requiredOption('--model <dir>', 'checkpoint folder')
    .requiredOption('--ids <ids>', 'a row of token ids; repeat for more rows', parseIds)
    .addOption(new Option('--bug <kind>', 'the planted bug').choices(['rope', 'eps']).default('rope'))
    .requiredOption('--layer <k>', 'the layer that has it (1..L)', (v) => parseLayers(v).from)
    .requiredOption('--out <file>', 'the dump to write (.safetensors)')
    .parse()
    .opts();
  const names = await writePlantedBugDump(opts.model, opts.ids, opts.bug, opts.layer, opts.out);
  process.stdout.write(`planted-bug: --bug ${opts.bug} in layer ${opts.layer} → ${opts.out} (${names.length} tensors)\n`);
}
