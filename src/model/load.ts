/**
 * Loading a Hugging Face checkpoint folder: config.json + model.safetensors (or shards listed in
 * model.safetensors.index.json) → a Llama on the chosen backend. From a path (Node), or from a set of
 * files (files.ts: a folder picked in a browser, or a URL).
 */
import type { Backend, DType } from '../kernels/backend.ts';
import { loadLlamaConfig, loadLlamaConfigFrom } from './config.ts';
import type { CheckpointFiles } from './files.ts';
import { Llama } from './llama.ts';
import { SafetensorsCheckpoint } from './safetensors.ts';
import { loadWeights, type TensorSource } from './weights.ts';

export interface LoadOptions {
  /** Called after each tensor is uploaded: (tensors done, tensors total). */
  onProgress?: (done: number, total: number) => void;
}

const computeDtypes: Record<string, DType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

export function checkpointSource(dir: string, ckpt: SafetensorsCheckpoint): TensorSource {
  return {
    label: dir,
    has: (name) => ckpt.info(name) !== undefined,
    shape: (name) => ckpt.info(name)!.shape,
    dtype: (name) => {
      const stored = ckpt.info(name)!.dtype;
      const dtype = computeDtypes[stored];
      if (!dtype) ckpt.read(name); // throws the reader's RoseError('DTYPE') naming tensor and dtype
      return dtype;
    },
    read: (name) => ckpt.read(name),
  };
}

export function loadLlama(dir: string, backend: Backend, opts: LoadOptions = {}): Llama {
  const config = loadLlamaConfig(dir);
  const ckpt = SafetensorsCheckpoint.open(dir);
  try {
    const weights = loadWeights(config, checkpointSource(dir, ckpt), backend, opts.onProgress);
    return new Llama(config, weights, backend);
  } finally {
    ckpt.close();
  }
}

/** loadLlama for a set of files; the weights are read into memory first (files.ts says why). */
export async function loadLlamaFrom(files: CheckpointFiles, backend: Backend, opts: LoadOptions = {}): Promise<Llama> {
  const config = await loadLlamaConfigFrom(files);
  const ckpt = await SafetensorsCheckpoint.fromFiles(files);
  try {
    const weights = loadWeights(config, checkpointSource(files.label, ckpt), backend, opts.onProgress);
    return new Llama(config, weights, backend);
  } finally {
    ckpt.close();
  }
}
