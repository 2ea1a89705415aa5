/**
 * rose-ts in a browser: the project's own loader pieces, Llama forward pass, WGSL kernels and ROSE loop,
 * imported UNCHANGED and run on navigator.gpu. Nothing here re-implements a kernel or a model step:
 * the only browser-specific code is fetching a checkpoint folder over HTTP.
 *
 * A checkpoint folder is a URL (relative or absolute, ending in '/') that serves config.json and
 * model.safetensors (a single file; sharded checkpoints are not handled here).
 */
import type { DType, HostWeight } from '../../src/kernels/backend.ts';
import { WebGpuBackend } from '../../src/kernels/webgpu/backend.ts';
import { parseLlamaConfig } from '../../src/model/config.ts';
import { Llama } from '../../src/model/llama.ts';
import { SafetensorsFile } from '../../src/model/safetensors.ts';
import { loadWeights, type TensorSource } from '../../src/model/weights.ts';
import { roseGenerate } from '../../src/decode/rose.ts';

/** What navigator.gpu offers on this page, straight from the WebGPU API (not through our backend). */
export interface AdapterReport {
  readonly available: boolean;
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  readonly isFallbackAdapter?: boolean;
  readonly features?: string[];
  readonly maxStorageBufferBindingSize?: number;
  readonly maxBufferSize?: number;
  readonly userAgent: string;
  readonly error?: string;
}

export async function adapterReport(): Promise<AdapterReport> {
  const userAgent = navigator.userAgent;
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (!gpu) return { available: false, userAgent, error: 'navigator.gpu is undefined (no WebGPU here)' };
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { available: false, userAgent, error: 'requestAdapter() returned null' };
    const i = adapter.info;
    return {
      available: true,
      vendor: i.vendor,
      architecture: i.architecture,
      device: i.device,
      description: i.description,
      isFallbackAdapter:
        (i as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
      features: [...adapter.features].sort(),
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      userAgent,
    };
  } catch (e) {
    return { available: false, userAgent, error: (e as Error).message ?? String(e) };
  }
}

const folder = (url: string): string => (url.endsWith('/') ? url : `${url}/`);

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${res.statusText}`);
  return res;
}

/** A safetensors file held in memory, as the TensorSource the weight loader reads. */
function fileSource(label: string, file: SafetensorsFile): TensorSource {
  const dtypes: Record<string, DType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
  return {
    label,
    has: (name) => file.info(name) !== undefined,
    shape: (name) => file.info(name)!.shape,
    dtype: (name) => {
      const dtype = dtypes[file.info(name)!.dtype];
      if (!dtype) file.read(name); // throws the reader's RoseError('DTYPE') naming tensor and dtype
      return dtype;
    },
    read: (name): HostWeight => file.read(name),
  };
}

export interface LoadedModel {
  readonly model: Llama;
  readonly backend: WebGpuBackend;
  /** The backend's description: adapter name, feature level and limits. */
  readonly adapter: string;
  readonly checkpoint: string;
  readonly fetchMs: number;
  readonly uploadMs: number;
}

/** Fetches config.json and model.safetensors from `checkpointUrl` and uploads the weights to WebGPU. */
export async function loadCheckpoint(checkpointUrl: string): Promise<LoadedModel> {
  const base = new URL(folder(checkpointUrl), location.href).href;
  const t0 = performance.now();
  const [configJson, bytes] = await Promise.all([
    fetchOk(`${base}config.json`).then((r) => r.json() as Promise<unknown>),
    fetchOk(`${base}model.safetensors`).then((r) => r.arrayBuffer()),
  ]);
  const t1 = performance.now();
  const config = parseLlamaConfig(configJson, `${base}config.json`);
  const file = SafetensorsFile.fromBytes(new Uint8Array(bytes), `${base}model.safetensors`);
  const backend = await WebGpuBackend.create();
  try {
    const weights = loadWeights(config, fileSource(`${base}model.safetensors`, file), backend);
    backend.flush();
    return {
      model: new Llama(config, weights, backend),
      backend,
      adapter: backend.description,
      checkpoint: base,
      fetchMs: t1 - t0,
      uploadMs: performance.now() - t1,
    };
  } catch (e) {
    backend.destroy();
    throw e;
  } finally {
    file.close();
  }
}

export interface CheckRequest {
  /** Checkpoint folder URL. */
  readonly checkpoint: string;
  /** Token ids: row 0 is the positive prompt, row 1 the reverse prompt. Left-padded to one length. */
  readonly rows: readonly (readonly number[])[];
  readonly alpha: number;
  readonly steps: number;
}

export interface CheckResult {
  readonly adapter: string;
  readonly adapterReport: AdapterReport;
  readonly vocab: number;
  /** Per row: the logits of its real (non-pad) positions, (length_r · V) flattened, from ONE batched prefill. */
  readonly prefill: number[][];
  /** ROSE's tokens from roseGenerate (greedy, the library's loop and the fused WGSL contrastSoftmax). */
  readonly tokens: number[];
  /** The last-position logits of each row at every step, (steps · V), replaying `tokens` through the KV cache. */
  readonly decodePos: number[];
  readonly decodeRev: number[];
  readonly ms: { fetch: number; upload: number; prefill: number; rose: number; replay: number };
}

/**
 * The end-to-end check the browser test runs: the left-padded batch prefill (all positions), ROSE
 * greedy decoding, and the per-step logits of both rows. Plain arrays out, so page.evaluate can
 * return them to Node (f32 → number is exact).
 */
export async function runCheck(req: CheckRequest): Promise<CheckResult> {
  if (req.rows.length !== 2) throw new Error(`runCheck needs two rows (positive, reverse), got ${req.rows.length}`);
  const report = await adapterReport();
  const loaded = await loadCheckpoint(req.checkpoint);
  const { model, backend } = loaded;
  const V = model.config.vocabSize;
  try {
    // 1. Prefill of the left-padded batch, logits at every position.
    let t = performance.now();
    const cache = model.newKvCache(req.rows.length, Math.max(...req.rows.map((r) => r.length)));
    const { T, logits } = model.prefill(cache, req.rows, true);
    const all = await backend.read(logits); // (B·T, V)
    const prefill = req.rows.map((r, b) => Array.from(all.subarray((b * T + T - r.length) * V, (b + 1) * T * V)));
    const prefillMs = performance.now() - t;

    // 2. ROSE, greedy, as the library runs it.
    t = performance.now();
    const [pos, ...rev] = req.rows;
    const result = await roseGenerate(model, pos, rev, { alphas: rev.map(() => req.alpha), maxNewTokens: req.steps });
    const roseMs = performance.now() - t;

    // 3. The same steps again, reading each step's last-position logits of both rows.
    t = performance.now();
    const decodePos: number[] = [];
    const decodeRev: number[] = [];
    const c2 = model.newKvCache(2, Math.max(pos.length, rev[0].length) + req.steps);
    let step = model.prefill(c2, [pos, rev[0]]).logits; // (2, V)
    for (let s = 0; s < result.tokens.length; s++) {
      const both = await backend.read(step);
      decodePos.push(...both.subarray(0, V));
      decodeRev.push(...both.subarray(V, 2 * V));
      if (s + 1 < result.tokens.length) step = model.forward(c2, Int32Array.of(result.tokens[s], result.tokens[s]));
    }
    const replayMs = performance.now() - t;

    return {
      adapter: loaded.adapter,
      adapterReport: report,
      vocab: V,
      prefill,
      tokens: result.tokens,
      decodePos,
      decodeRev,
      ms: { fetch: loaded.fetchMs, upload: loaded.uploadMs, prefill: prefillMs, rose: roseMs, replay: replayMs },
    };
  } finally {
    backend.destroy();
  }
}

/** min, max, mean, and the top entries of one row of logits. */
export function summarize(
  row: ArrayLike<number>,
  top = 5,
): { min: number; max: number; mean: number; top: { id: number; logit: number }[] } {
  let min = Infinity,
    max = -Infinity,
    sum = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  const ids = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  return { min, max, mean: sum / row.length, top: ids.slice(0, top).map((id) => ({ id, logit: row[id] })) };
}

export interface RoseWebApi {
  adapterReport: typeof adapterReport;
  runCheck: typeof runCheck;
}
