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

/**
 * Fetches config.json and model.safetensors from `checkpointUrl` and uploads the weights to WebGPU:
 * to `backend` when given (the caller owns it), else to a backend of its own (destroyed on failure).
 */
export async function loadCheckpoint(checkpointUrl: string, backend?: WebGpuBackend): Promise<LoadedModel> {
  const base = new URL(folder(checkpointUrl), location.href).href;
  const t0 = performance.now();
  const [configJson, bytes] = await Promise.all([
    fetchOk(`${base}config.json`).then((r) => r.json() as Promise<unknown>),
    fetchOk(`${base}model.safetensors`).then((r) => r.arrayBuffer()),
  ]);
  const t1 = performance.now();
  const config = parseLlamaConfig(configJson, `${base}config.json`);
  const file = SafetensorsFile.fromBytes(new Uint8Array(bytes), `${base}model.safetensors`);
  const be = backend ?? (await WebGpuBackend.create());
  try {
    const weights = loadWeights(config, fileSource(`${base}model.safetensors`, file), be);
    be.flush();
    return {
      model: new Llama(config, weights, be),
      backend: be,
      adapter: be.description,
      checkpoint: base,
      fetchMs: t1 - t0,
      uploadMs: performance.now() - t1,
    };
  } catch (e) {
    if (!backend) be.destroy();
    throw e;
  } finally {
    file.close();
  }
}

/** One ROSE run (greedy) of a check. */
export interface RunRequest {
  readonly alpha: number;
  readonly steps: number;
  /**
   * The token stream to replay. Omitted: the library's own loop (roseGenerate, through the KV cache)
   * decodes it here, and the replay then checks that loop's choices.
   */
  readonly tokens?: readonly number[];
}

export interface CheckRequest {
  /** Checkpoint folder URL. */
  readonly checkpoint: string;
  /** Token ids: row 0 is the positive prompt, row 1 the reverse prompt. Left-padded to one length. */
  readonly rows: readonly (readonly number[])[];
  readonly runs: readonly RunRequest[];
  /**
   * Steps of the first run to decode through the KV cache (prefill, then one forward of M = 2 per
   * token: the fused decode kernels), feeding its tokens; their logits come back in `cached`. Default 0.
   */
  readonly cachedSteps?: number;
}

export interface RunResult {
  readonly alpha: number;
  /** The run's tokens: decoded here by roseGenerate (`decoded`), or the ones the request gave. */
  readonly tokens: number[];
  readonly decoded: boolean;
  /** Each step's last-position logits of the positive and the reverse row, (steps · V) flattened. */
  readonly decodePos: number[];
  readonly decodeRev: number[];
  /** The fused WGSL contrastSoftmax on those logits, per step: its argmax and its probabilities (steps · V). */
  readonly argmax: number[];
  readonly probs: number[];
}

export interface CheckResult {
  readonly adapter: string;
  readonly adapterReport: AdapterReport;
  readonly vocab: number;
  /** Per row: the logits of its real (non-pad) prompt positions, (length_r · V) flattened, from a left-padded batch. */
  readonly prefill: number[][];
  readonly runs: RunResult[];
  /** The first run's first cachedSteps steps through the KV cache: each row's logits, (cachedSteps · V) flattened. */
  readonly cached: { pos: number[]; rev: number[] };
  readonly ms: { fetch: number; upload: number; decode: number; cached: number; replay: number; contrast: number };
}

/**
 * The end-to-end check the browser test runs, on each checkpoint with ONE WebGPU device (its
 * pipelines compile once for all):
 *   1. every run without tokens is decoded by roseGenerate, the library's loop through the KV cache;
 *   2. every run's stream is replayed in ONE left-padded batch of 2·runs rows, the positive and the
 *      reverse prompt each followed by the run's tokens, with the logits of every position: the
 *      prompt positions of the first pair are the prefill of the batch of two, and position
 *      prompt − 1 + s of each row is that row's logits at step s (a row's logits do not depend on the
 *      other rows, and a prefill equals decoding through the KV cache: test/model/properties.test.ts);
 *   3. at every step of every run, the fused contrastSoftmax kernel decides on those logits.
 * So each step's decision is checked on the reference's own prefix, for every α, at the cost of one
 * forward pass. Plain arrays out, so page.evaluate can return them to Node (f32 → number is exact).
 */
export async function runChecks(reqs: readonly CheckRequest[]): Promise<CheckResult[]> {
  const report = await adapterReport();
  const backend = await WebGpuBackend.create();
  try {
    const results: CheckResult[] = [];
    for (const req of reqs) results.push(await checkOne(req, report, await loadCheckpoint(req.checkpoint, backend)));
    return results;
  } finally {
    backend.destroy();
  }
}

/** One checkpoint: runChecks with a backend of its own. */
export async function runCheck(req: CheckRequest): Promise<CheckResult> {
  return (await runChecks([req]))[0];
}

async function checkOne(req: CheckRequest, report: AdapterReport, loaded: LoadedModel): Promise<CheckResult> {
  if (req.rows.length !== 2) throw new Error(`runCheck needs two rows (positive, reverse), got ${req.rows.length}`);
  if (req.runs.length === 0) throw new Error('runCheck needs at least one run');
  const { model, backend } = loaded;
  const V = model.config.vocabSize;
  const [pos, rev] = req.rows;

  // 1. The runs the library decodes itself.
  let t = performance.now();
  const streams: number[][] = [];
  for (const run of req.runs) {
    streams.push(
      run.tokens ? [...run.tokens] : (await roseGenerate(model, pos, [rev], { alphas: [run.alpha], maxNewTokens: run.steps })).tokens,
    );
  }
  const decodeMs = performance.now() - t;

  // 1b. The decode path itself, through the KV cache: step 0 is the prefill's, each later step one
  // forward of the batch of two on the previous token (M = 2: the fused decode kernels on WebGPU).
  t = performance.now();
  const cached = { pos: [] as number[], rev: [] as number[] };
  if (req.cachedSteps) {
    const cache = model.newKvCache(2, Math.max(pos.length, rev.length) + req.cachedSteps);
    let step = model.prefill(cache, [pos, rev]).logits; // (2, V)
    for (let s = 0; s < req.cachedSteps; s++) {
      if (s > 0) step = model.forward(cache, Int32Array.of(streams[0][s - 1], streams[0][s - 1])); // (2, V)
      const l = await backend.read(step);
      cached.pos.push(...l.subarray(0, V));
      cached.rev.push(...l.subarray(V, 2 * V));
    }
    for (const c of [...cache.k, ...cache.v, cache.rope]) backend.free(c);
  }
  const cachedMs = performance.now() - t;

  // 2. The replay: for run r, rows 2r and 2r + 1 are the prompts followed by the run's tokens (the last
  // token is never fed: its logits would be step `steps`, which no run has).
  t = performance.now();
  const rows = streams.flatMap((tokens) => [
    [...pos, ...tokens.slice(0, -1)],
    [...rev, ...tokens.slice(0, -1)],
  ]);
  const cache = model.newKvCache(rows.length, Math.max(...rows.map((r) => r.length)));
  const { T, logits } = model.prefill(cache, rows, true); // logits (B·T, V), every position
  const all = await backend.read(logits);
  const replayMs = performance.now() - t;

  // 3. The fused decision at each step, on the (2, V) logits gathered from the replay.
  t = performance.now();
  const slot = (row: number, position: number) => row * T + (T - rows[row].length) + position; // index into (B·T)
  const pair = backend.alloc([2, V]);
  const probsT = backend.alloc([V]);
  const runs: RunResult[] = [];
  for (let r = 0; r < req.runs.length; r++) {
    const out: RunResult = {
      alpha: req.runs[r].alpha,
      tokens: streams[r],
      decoded: !req.runs[r].tokens,
      decodePos: [],
      decodeRev: [],
      argmax: [],
      probs: [],
    };
    for (let s = 0; s < streams[r].length; s++) {
      const at = [slot(2 * r, pos.length - 1 + s), slot(2 * r + 1, rev.length - 1 + s)]; // step s of each row
      out.decodePos.push(...all.subarray(at[0] * V, (at[0] + 1) * V));
      out.decodeRev.push(...all.subarray(at[1] * V, (at[1] + 1) * V));
      backend.gatherRows(pair, logits, Int32Array.from(at)); // pair (2, V)
      const decision = await backend.contrastSoftmax(probsT, pair, { alphas: [out.alpha], temperature: 1, beta: 0, uniform: 0 });
      out.argmax.push(decision.argmax);
      out.probs.push(...(await backend.read(probsT)));
    }
    runs.push(out);
  }
  const prefill = [pos, rev].map((r, b) => Array.from(all.subarray(slot(b, 0) * V, slot(b, r.length) * V)));
  backend.free(pair);
  backend.free(probsT);
  const contrastMs = performance.now() - t;

  return {
    adapter: loaded.adapter,
    adapterReport: report,
    vocab: V,
    prefill,
    runs,
    cached,
    ms: { fetch: loaded.fetchMs, upload: loaded.uploadMs, decode: decodeMs, cached: cachedMs, replay: replayMs, contrast: contrastMs },
  };
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
  runChecks: typeof runChecks;
}
