/**
 * Pulling a checkpoint from the Hugging Face Hub (or a mirror: HF_ENDPOINT) into a local folder that
 * loadLlama can open, through @huggingface/hub's listFiles (the tree API) and downloadFile (resolve URLs).
 *
 * Only what rose-ts reads is fetched: config.json, the safetensors weights (model.safetensors, or
 * model.safetensors.index.json and exactly the shards its weight_map names), and the tokenizer and
 * generation files. PyTorch .bin, ONNX, GGUF, TF/Flax files and sub-folders are skipped.
 *
 * Every file streams into `<file>.partial` and is renamed into place only once it has the listed size
 * and hash (sha256 of an LFS file, the git blob sha1 of any other), so a final name never holds a torn
 * or corrupted file. An interrupted pull can be run again: files already complete with the listed size
 * are skipped, and a `.partial` resumes with a Range request (and starts over if the result does not
 * verify). config.json is fetched and checked first, so a repo rose-ts cannot run fails before gigabytes
 * of weights are downloaded; at the end the folder is opened and every tensor checked against the config.
 *
 * Errors are RoseErrors: a bad repo id, revision, token or hub URL, and a repo the Hub refuses (401, 403,
 * 404), are 'INPUT'; a repo with no usable safetensors, an unreachable or misbehaving server and a
 * download that was cut, stalled or does not verify are 'CHECKPOINT'; a config.json rose-ts cannot run
 * is 'CONFIG'.
 */
import { HubApiError, InvalidApiResponseFormatError, downloadFile, listFiles, type ListFileEntry } from '@huggingface/hub';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RoseError, type RoseErrorCode } from '../errors.ts';
import { loadLlamaConfig, type LlamaConfig } from '../model/config.ts';
import { checkpointSource } from '../model/load.ts';
import { parseShardIndex, SafetensorsCheckpoint, SHARD_INDEX, SINGLE_FILE } from '../model/safetensors.ts';
import { checkTensors } from '../model/weights.ts';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** Where pulls go by default: weights/ at the root of this repository (next to weights/rose-micro). */
export const WEIGHTS_DIR = fileURLToPath(new URL('../../weights/', import.meta.url));

export interface PullOptions {
  /** Destination folder; default weights/<owner>--<name> under the repository root. */
  dir?: string;
  /** Branch, tag or commit; default 'main'. */
  revision?: string;
  /** Hub base URL; default env HF_ENDPOINT, else https://huggingface.co. */
  hubUrl?: string;
  /** Access token (hf_…) for private or gated repos; default env HF_TOKEN. */
  token?: string;
  /** The fetch to use (tests, proxies); default the global fetch. */
  fetch?: typeof fetch;
  /** Called as bytes arrive: (file name, bytes of it on disk, its size). A file already present reports (size, size) once. */
  onProgress?: (file: string, bytesDone: number, bytesTotal: number) => void;
  /** Fail when the server sends nothing (no headers, no body bytes) for this long; default 60 000 ms. */
  stallTimeoutMs?: number;
  /** Cancels the pull; finished files stay, the current one stays as .partial (resumable). */
  signal?: AbortSignal;
}

export interface PullResult {
  /** The folder, absolute: pass it as --model. */
  dir: string;
  repo: string;
  revision: string;
  /** The files of the checkpoint (names inside dir), in the order they were pulled. */
  files: string[];
  /** Their total size. */
  bytes: number;
  /** Files that were already complete and were not downloaded again. */
  skipped: string[];
  /** Bytes this run actually received (less than `bytes` after an interrupted or repeated pull). */
  downloadedBytes: number;
  /** config.json, validated. */
  config: LlamaConfig;
  /** Tensors in the checkpoint (every one the config implies is present with its shape). */
  tensors: number;
}

// --- what to fetch ------------------------------------------------------------------------------

const CONFIG = 'config.json';
/** Read by the tokenizer (src/model/tokenizer.ts) and generation when present; never required. */
const OPTIONAL = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja'];

/** A file name we will write: one plain path component (the listing and the index come from a server). */
const SAFE_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

/** Hugging Face's rules for an owner or a repo name: [\w.-], at most 96, no leading/trailing '.'/'-', no '--' or '..'. */
const NAME_PART = /^(?![.-])(?!.*(?:--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![.-])$/;

function checkRepoId(repoId: unknown): string {
  const s = typeof repoId === 'string' ? repoId.trim() : '';
  const parts = s.split('/');
  if (parts.length === 2 && parts.every((p) => NAME_PART.test(p))) return s;
  const shown = typeof repoId === 'string' ? JSON.stringify(repoId.slice(0, 120)) : String(repoId);
  throw new RoseError(
    'INPUT',
    `${shown} is not a Hugging Face model id`,
    'give it as <owner>/<name>, e.g. meta-llama/Llama-3.2-1B-Instruct (letters, digits, "_", "." and "-"; no URL, no "models/" prefix)',
  );
}

function checkRevision(revision: string): string {
  if (/^[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,199}$/.test(revision) && !revision.includes('..') && !revision.endsWith('/')) return revision;
  throw new RoseError(
    'INPUT',
    `${JSON.stringify(revision.slice(0, 120))} is not a revision`,
    'give a branch, a tag or a commit hash (e.g. main, v1.0, refs/pr/1)',
  );
}

function checkHubUrl(hubUrl: string): string {
  let url: URL | undefined;
  try {
    url = new URL(hubUrl);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.search || url.hash || url.username || url.password) {
    throw new RoseError(
      'INPUT',
      `${JSON.stringify(hubUrl.slice(0, 200))} is not a hub URL`,
      `give an http(s) base URL such as ${DEFAULT_HUB_URL} (--hub-url or HF_ENDPOINT)`,
    );
  }
  return url.href.replace(/\/+$/, '');
}

function checkToken(token: string): string {
  if (/^hf_[A-Za-z0-9_-]+$/.test(token)) return token;
  throw new RoseError(
    'INPUT',
    'the access token is not a Hugging Face token',
    'tokens start with "hf_"; create one at https://huggingface.co/settings/tokens and pass it with --token or HF_TOKEN',
  );
}

/** The default destination of a repo: weights/<owner>--<name>. */
export function defaultPullDir(repoId: string): string {
  return join(WEIGHTS_DIR, checkRepoId(repoId).replace('/', '--'));
}

const env = (name: string): string | undefined => {
  const v = process.env[name];
  return v && v.trim() !== '' ? v.trim() : undefined;
};

/** What a listing holds instead of usable safetensors, as an error that says what to do. */
function noSafetensors(repo: string, files: string[]): RoseError {
  const has = (re: RegExp) => files.some((f) => re.test(f));
  if (has(/\.safetensors$/)) {
    return new RoseError(
      'CHECKPOINT',
      `${repo} has .safetensors files (${files
        .filter((f) => f.endsWith('.safetensors'))
        .slice(0, 4)
        .join(', ')}) but neither ${SINGLE_FILE} nor ${SHARD_INDEX}`,
      'rose-ts reads the layout transformers writes (save_pretrained); look for a transformers-format version of this model',
    );
  }
  if (has(/\.(bin|pt|pth)$/)) {
    return new RoseError(
      'CHECKPOINT',
      `${repo} has only PyTorch .bin weights; rose-ts reads safetensors`,
      'look for a safetensors version of this model on the Hub, or convert it with transformers (save_pretrained(..., safe_serialization=True)) and pass the folder as --model',
    );
  }
  if (has(/\.gguf$/)) {
    return new RoseError(
      'CHECKPOINT',
      `${repo} has only GGUF weights (llama.cpp); rose-ts reads safetensors`,
      'pull the original transformers repo of this model instead',
    );
  }
  if (has(/\.(onnx|h5|msgpack|ckpt)$/)) {
    return new RoseError(
      'CHECKPOINT',
      `${repo} has only ONNX/TensorFlow/Flax weights; rose-ts reads safetensors`,
      'pull the transformers (PyTorch) repo of this model instead',
    );
  }
  return new RoseError(
    'CHECKPOINT',
    `${repo} has no model weights at its top level (${files.length} file(s) listed)`,
    `check the repo id; rose-ts needs ${SINGLE_FILE} or ${SHARD_INDEX} next to ${CONFIG}`,
  );
}

// --- the network --------------------------------------------------------------------------------

/** No bytes for too long (set by us, so it is told apart from the errors of fetch itself). */
class Stall extends Error {
  constructor(readonly ms: number) {
    super(`no data for ${ms / 1000} s`);
  }
}

/**
 * The fetch handed to the library: every request can be cancelled by the pull (a stall while reading a
 * body, the caller's signal) and fails when no response headers come within the stall timeout.
 */
function guardedFetch(base: typeof fetch, stallMs: number, pull: AbortSignal): typeof fetch {
  return async (input, init) => {
    const headers = new AbortController();
    const timer = setTimeout(() => headers.abort(new Stall(stallMs)), stallMs);
    try {
      return await base(input, { ...init, signal: AbortSignal.any([headers.signal, pull]) });
    } catch (e) {
      if (headers.signal.aborted) throw headers.signal.reason;
      if (pull.aborted) throw pull.reason;
      throw e;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** reader.read(), failing with Stall when nothing arrives within `ms`. */
async function readWithin<T>(reader: ReadableStreamDefaultReader<T>, ms: number): Promise<ReadableStreamReadResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Stall(ms)), ms);
  });
  try {
    return await Promise.race([reader.read(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

const errnoCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
};

/** The code of the low-level cause of a fetch failure (ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET, …). */
function causeCode(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
    const code = errnoCode(c);
    if (code) return code;
  }
  return undefined;
}

const FS_CODES = new Set(['ENOSPC', 'EACCES', 'EPERM', 'EROFS', 'EDQUOT', 'EISDIR', 'ENOTDIR', 'EMFILE', 'EEXIST', 'EIO']);

interface Context {
  repo: string;
  revision: string;
  hubUrl: string;
  token?: string;
}

/** Any failure while talking to the Hub or writing a file, as one RoseError naming what was being done. */
function failure(e: unknown, doing: string, ctx: Context): RoseError {
  if (e instanceof RoseError) return e;
  const rev = ctx.revision === 'main' ? '' : ` at revision ${ctx.revision}`;
  const net: RoseErrorCode = 'CHECKPOINT';
  if (e instanceof Stall) {
    return new RoseError(
      net,
      `${doing}: ${ctx.hubUrl} sent nothing for ${e.ms / 1000} s`,
      'the network or the server stalled; run the same command again (finished files are kept and a cut file resumes)',
    );
  }
  if (e instanceof HubApiError) {
    const said = hubMessage(e);
    switch (e.statusCode) {
      case 401:
        return new RoseError(
          'INPUT',
          `${doing}: the Hub refused access to ${ctx.repo}${rev} (401${said}): it does not exist, or it is private or gated`,
          ctx.token
            ? 'check the repo id; the token was refused or cannot read this repo (for a gated model, accept its license on its page with the same account)'
            : 'check the repo id; for a private or gated repo pass --token hf_… or set HF_TOKEN',
        );
      case 403:
        return new RoseError(
          'INPUT',
          `${doing}: access to ${ctx.repo} is restricted (403${said})`,
          'a gated model: accept its license on its page on huggingface.co, with the account whose token you pass (--token or HF_TOKEN)',
        );
      case 404:
        return new RoseError(
          'INPUT',
          `${doing}: ${ctx.repo}${rev} was not found on ${ctx.hubUrl} (404${said})`,
          (rev
            ? 'check the repo id and the revision (a branch, tag or commit of that repo)'
            : 'check the repo id (owner/name, as in the URL of the model page)') +
            (ctx.token
              ? '; a private repo must be readable by the account of the token'
              : '; a private repo needs --token hf_… or HF_TOKEN'),
        );
      case 416:
        return new RoseError(
          net,
          `${doing}: the server refused to resume the file (416)`,
          'delete the .partial file named above and run the command again',
        );
      case 429:
        return new RoseError(
          net,
          `${doing}: the Hub is rate-limiting requests (429${said})`,
          'wait a few minutes and run the same command again; a token (HF_TOKEN) raises the limit',
        );
      default:
        return new RoseError(
          net,
          `${doing}: ${ctx.hubUrl} answered HTTP ${e.statusCode}${said}`,
          e.statusCode >= 500
            ? 'the server has a problem; run the same command again later (it resumes)'
            : 'check --hub-url / HF_ENDPOINT and the repo id',
        );
    }
  }
  if (e instanceof InvalidApiResponseFormatError) {
    return new RoseError(
      net,
      `${doing}: ${ctx.hubUrl} did not answer like a Hugging Face Hub (${e.message})`,
      'check --hub-url / HF_ENDPOINT: it must be the Hub or a mirror of its API',
    );
  }
  const code = causeCode(e);
  const msg = e instanceof Error ? e.message : String(e);
  if (code && FS_CODES.has(code)) {
    return new RoseError(
      'INPUT',
      `${doing}: cannot write the file (${msg})`,
      'check that the destination folder is writable and has free space',
    );
  }
  if ((e as Error | null)?.name === 'AbortError' || (e as Error | null)?.name === 'TimeoutError') {
    return new RoseError(net, `${doing}: cancelled`, 'run the same command again to finish the pull (it resumes)');
  }
  if (msg === 'terminated' || code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE') {
    return new RoseError(
      net,
      `${doing}: the connection to ${ctx.hubUrl} was cut (${code ?? msg})`,
      'run the same command again: finished files are kept and the cut file resumes',
    );
  }
  if (e instanceof TypeError && msg === 'fetch failed') {
    return new RoseError(
      net,
      `${doing}: cannot reach ${ctx.hubUrl} (${code ?? (e as { cause?: Error }).cause?.message ?? msg})`,
      'check the network connection, or point --hub-url / HF_ENDPOINT at a reachable mirror',
    );
  }
  return new RoseError(
    net,
    `${doing}: ${msg.slice(0, 300)}`,
    'run the same command again; if it keeps failing, check --hub-url / HF_ENDPOINT and the network',
  );
}

/** The Hub's own explanation ("Repository not found", "Invalid rev id: x"), short, without the URL trailer. */
function hubMessage(e: HubApiError): string {
  const data = e.data as Record<string, unknown> | undefined;
  const m = typeof data?.error === 'string' ? data.error : typeof data?.message === 'string' ? data.message : '';
  const s = m.replace(/\s+/g, ' ').trim().slice(0, 160);
  return s ? `: ${s}` : '';
}

// --- one file -----------------------------------------------------------------------------------

function sizeOf(path: string): number | undefined {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/** The hash the listing promises for a file: sha256 of an LFS file's content, else the git blob sha1. */
function expectedHash(entry: ListFileEntry): { algo: 'sha256' | 'sha1'; hex: string; size: number } | undefined {
  if (entry.lfs && /^[0-9a-f]{64}$/.test(entry.lfs.oid)) return { algo: 'sha256', hex: entry.lfs.oid, size: entry.lfs.size };
  if (!entry.lfs && entry.oid && /^[0-9a-f]{40}$/.test(entry.oid)) return { algo: 'sha1', hex: entry.oid, size: entry.size };
  return undefined;
}

function newHasher(want: { algo: 'sha256' | 'sha1'; size: number }): Hash {
  const h = createHash(want.algo);
  if (want.algo === 'sha1') h.update(`blob ${want.size}\0`); // a git blob id hashes this header first
  return h;
}

async function hashPrefix(h: Hash, path: string, length: number): Promise<void> {
  if (length === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: length - 1, highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
}

/** The bytes we got are not the file (a resumed .partial that belonged to another version, a bad server). */
class Mismatch extends Error {}

interface Fetcher {
  ctx: Context;
  dir: string;
  common: { repo: string; hubUrl: string; fetch: typeof fetch; accessToken?: string };
  stallMs: number;
  onProgress?: PullOptions['onProgress'];
}

/** Makes dir/<name> the listed file. Returns the bytes received, or 'present' when it was complete already. */
async function pullFile(f: Fetcher, entry: ListFileEntry): Promise<number | 'present'> {
  const name = entry.path;
  const size = entry.lfs?.size ?? entry.size;
  const dest = join(f.dir, name);
  const part = `${dest}.partial`;
  if (sizeOf(dest) === size) {
    f.onProgress?.(name, size, size);
    return 'present';
  }
  const doing = `downloading ${name} of ${f.ctx.repo}`;
  try {
    if (size === 0) {
      // Nothing to fetch (and a 1-byte probe of an empty file would be answered 416).
      await writeFile(part, new Uint8Array(0));
      await rename(part, dest);
      f.onProgress?.(name, 0, 0);
      return 0;
    }
    const blob = await downloadFile({ ...f.common, path: name, revision: f.ctx.revision, xet: false });
    if (!blob)
      throw new RoseError(
        'CHECKPOINT',
        `${doing}: the Hub lists the file but does not serve it (404)`,
        'the repo changed during the pull; run the same command again',
      );
    if (blob.size !== size) {
      throw new RoseError(
        'CHECKPOINT',
        `${doing}: the Hub lists ${size} bytes but serves ${blob.size}`,
        'the repo changed during the pull; run the same command again',
      );
    }
    const want = expectedHash(entry);
    let received = 0;
    for (let attempt = 0; ; attempt++) {
      let start = sizeOf(part) ?? 0;
      if (start > size || attempt > 0) {
        await rm(part, { force: true });
        start = 0;
      }
      const hasher = want && newHasher(want);
      if (hasher) await hashPrefix(hasher, part, start);
      try {
        received += await streamInto(f, name, blob, part, start, size, hasher);
        if (hasher && want && hasher.digest('hex') !== want.hex) {
          throw new Mismatch(`${doing}: the file's ${want.algo} is not the one the Hub lists`);
        }
      } catch (e) {
        if (!(e instanceof Mismatch)) throw e; // kept as .partial: the next run resumes it
        await rm(part, { force: true });
        if (start > 0 && attempt === 0) continue; // the resumed prefix was stale: once more from zero
        throw new RoseError(
          'CHECKPOINT',
          e.message,
          'the download was corrupted or the repo changed during the pull; run the same command again',
        );
      }
      await rename(part, dest);
      return received;
    }
  } catch (e) {
    throw failure(e, doing, f.ctx);
  }
}

/** Appends bytes [start, size) of the blob to `part`, fsyncs it; returns the bytes received. */
async function streamInto(
  f: Fetcher,
  name: string,
  blob: Blob,
  part: string,
  start: number,
  size: number,
  hasher: Hash | undefined,
): Promise<number> {
  const fh = await open(part, start > 0 ? 'a' : 'w');
  let done = start;
  try {
    f.onProgress?.(name, done, size);
    if (start < size) {
      const reader = (start > 0 ? blob.slice(start) : blob).stream().getReader();
      try {
        for (;;) {
          const { done: end, value } = await readWithin(reader, f.stallMs);
          if (end) break;
          if (done + value.byteLength > size) throw new Mismatch(`downloading ${name}: the server sent more than the file's ${size} bytes`);
          for (let w = 0; w < value.byteLength; ) w += (await fh.write(value, w, value.byteLength - w)).bytesWritten;
          hasher?.update(value);
          done += value.byteLength;
          f.onProgress?.(name, done, size);
        }
      } finally {
        reader.cancel().catch(() => {}); // frees the connection if we stopped early; a no-op at the end
      }
      if (done !== size) {
        throw new RoseError(
          'CHECKPOINT',
          `downloading ${name}: the server ended the file after ${done} of ${size} bytes`,
          'run the same command again: it resumes where it stopped',
        );
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return done - start;
}

// --- the pull -----------------------------------------------------------------------------------

/** Weight files of a repo: the shards its index names (read from `dir`), each a .safetensors file the repo lists. */
async function shardsOf(dir: string, repo: string, listed: Map<string, ListFileEntry>): Promise<ListFileEntry[]> {
  const broken = "the repo's shard index is broken; this checkpoint cannot be loaded";
  let text: string;
  try {
    text = await readFile(join(dir, SHARD_INDEX), 'utf8');
  } catch (e) {
    throw new RoseError('CHECKPOINT', `cannot read ${join(dir, SHARD_INDEX)}: ${(e as Error).message}`, 'run the same pull again');
  }
  const index = parseShardIndex(text, `${repo}: ${SHARD_INDEX}`, broken);
  return index.shards.map((s) => {
    const entry = SAFE_FILE.test(s) && s.endsWith('.safetensors') ? listed.get(s) : undefined;
    if (!entry) {
      throw new RoseError(
        'SAFETENSORS',
        `${repo}: ${SHARD_INDEX} names shard ${JSON.stringify(s.slice(0, 100))}, which is not a .safetensors file of the repo`,
        "the repo's shard index does not match its files; this checkpoint cannot be loaded",
      );
    }
    return entry;
  });
}

/**
 * Pulls a model repo into a folder that loadLlama opens (see the top of this file). Resolves with what
 * is in the folder once every file is complete and the checkpoint matches its config.
 */
export async function pullModel(repoId: string, opts: PullOptions = {}): Promise<PullResult> {
  const repo = checkRepoId(repoId);
  const revision = checkRevision(opts.revision ?? 'main');
  const hubUrl = checkHubUrl(opts.hubUrl ?? env('HF_ENDPOINT') ?? DEFAULT_HUB_URL);
  const tokenGiven = opts.token ?? env('HF_TOKEN');
  const token = tokenGiven === undefined ? undefined : checkToken(tokenGiven);
  const dir = resolve(opts.dir ?? defaultPullDir(repo));
  const stallMs = opts.stallTimeoutMs ?? 60_000;
  if (!(Number.isFinite(stallMs) && stallMs > 0))
    throw new RoseError('INPUT', `stallTimeoutMs must be > 0, got ${stallMs}`, 'pass a number of milliseconds');
  const ctx: Context = { repo, revision, hubUrl, token };

  const pull = new AbortController();
  const onAbort = () => pull.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const common = { repo, hubUrl, fetch: guardedFetch(opts.fetch ?? fetch, stallMs, pull.signal), ...(token ? { accessToken: token } : {}) };
  const f: Fetcher = { ctx, dir, common, stallMs, onProgress: opts.onProgress };

  try {
    // 1. The listing of the top folder decides what to fetch before anything is written.
    const listed = new Map<string, ListFileEntry>();
    try {
      // listFiles puts the revision into the URL as is; a branch like refs/pr/1 must be one segment.
      for await (const e of listFiles({ ...common, revision: encodeURIComponent(revision) })) {
        if (e.type === 'file' && SAFE_FILE.test(e.path)) listed.set(e.path, e);
      }
    } catch (e) {
      throw failure(e, `listing the files of ${repo}`, ctx);
    }
    const names = [...listed.keys()];
    if (!listed.has(SINGLE_FILE) && !listed.has(SHARD_INDEX)) throw noSafetensors(repo, names);
    if (!listed.has(CONFIG)) {
      throw new RoseError(
        'CONFIG',
        `${repo} has weights but no ${CONFIG}`,
        'rose-ts needs the config.json transformers writes next to the weights; this repo is not a transformers checkpoint',
      );
    }

    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw failure(e, `creating ${dir}`, ctx);
    }

    const files: ListFileEntry[] = [];
    let downloadedBytes = 0;
    const skipped: string[] = [];
    const get = async (entry: ListFileEntry) => {
      const got = await pullFile(f, entry);
      if (got === 'present') skipped.push(entry.path);
      else downloadedBytes += got;
      files.push(entry);
    };

    // 2. config.json first: a model rose-ts cannot run fails before the weights are downloaded.
    await get(listed.get(CONFIG)!);
    let config: LlamaConfig;
    try {
      config = loadLlamaConfig(dir);
    } catch (e) {
      if (!(e instanceof RoseError)) throw e;
      throw new RoseError(e.code, `${repo} is not a model rose-ts can run: ${e.message}`, e.hint);
    }

    // 3. The weights' layout: a single file wins over shards, as in transformers and SafetensorsCheckpoint.
    let weights: ListFileEntry[];
    if (listed.has(SINGLE_FILE)) weights = [listed.get(SINGLE_FILE)!];
    else {
      await get(listed.get(SHARD_INDEX)!);
      weights = await shardsOf(dir, repo, listed);
    }
    for (const name of OPTIONAL) if (listed.has(name)) await get(listed.get(name)!);
    for (const w of weights) await get(w);

    // 4. The folder must load: every tensor the config implies, with its shape.
    let tensors: number;
    const ckpt = SafetensorsCheckpoint.open(dir);
    try {
      checkTensors(config, checkpointSource(dir, ckpt));
      tensors = ckpt.names().length;
    } catch (e) {
      if (!(e instanceof RoseError)) throw e;
      throw new RoseError(e.code, `pulled ${repo} into ${dir}, but it does not load: ${e.message}`, e.hint);
    } finally {
      ckpt.close();
    }

    return {
      dir,
      repo,
      revision,
      files: files.map((e) => e.path),
      bytes: files.reduce((s, e) => s + (e.lfs?.size ?? e.size), 0),
      skipped,
      downloadedBytes,
      config,
      tensors,
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    pull.abort(); // nothing is in flight after success; after a failure this drops any open stream
  }
}
