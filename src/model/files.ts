/**
 * A checkpoint folder as a set of named files, wherever they are: files a user picked in a browser
 * (File / Blob objects), or a URL that serves them (fetch). Nothing here needs Node, so the loaders
 * that read through it (config.ts, tokenizer.ts, safetensors.ts, load.ts: the `…From(files)`
 * functions) run unchanged in a page or a Web Worker. The CLI keeps its own path-based loaders, which
 * read only what they need from disk.
 *
 * A browser cannot read a file at an offset synchronously, so each file is read whole into memory.
 * Rose.open checks the model against the backend's memory (from config.json alone) before any weight
 * is read, so a model too big for the device is refused before a multi-gigabyte download.
 */
import { RoseError } from '../errors.ts';
import { gib } from '../kernels/backend.ts';

export interface CheckpointFiles {
  /** The folder in messages: a URL, or the name of the folder the user picked. */
  readonly label: string;
  /** Where one file of the folder is, for messages. */
  where(name: string): string;
  /** The bytes of a file, or undefined when the folder has no such file. Any other failure is a RoseError. */
  bytes(name: string): Promise<Uint8Array | undefined>;
  /** The text of a file (UTF-8), or undefined when the folder has no such file. */
  text(name: string): Promise<string | undefined>;
}

/** (file name, bytes read so far, its size when known) while a file is being read. */
export type ReadProgress = (name: string, loaded: number, total: number | undefined) => void;

/** `name` inside `folder` for a message, whatever separator the folder already ends with. */
export const inFolder = (folder: string, name: string): string => (/[/\\]$/.test(folder) ? `${folder}${name}` : `${folder}/${name}`);

/** What reading a file fails with when it is too big for this JavaScript engine's memory. */
function tooBig(where: string, size: number | undefined, e: unknown): RoseError {
  const howBig = size === undefined ? 'too big' : `${gib(size)} GiB`;
  return new RoseError(
    'LIMIT',
    `${where} is ${howBig}, more than this browser could hold in memory (${e instanceof Error ? e.message : String(e)})`,
    'use a smaller checkpoint',
  );
}

const decodeText = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : new TextDecoder().decode(b));

/** The part of a browser File the loader uses (Node 20 has File and Blob too). */
export interface NamedBlob {
  readonly name: string;
  readonly size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/**
 * Files a user picked (an <input type=file webkitdirectory> folder, or several files). Only the base
 * name of each counts: `folder/config.json` is config.json.
 */
export function blobFiles(files: Iterable<NamedBlob>, label: string): CheckpointFiles {
  const byName = new Map<string, NamedBlob>();
  for (const f of files) byName.set(f.name.replace(/^.*[/\\]/, ''), f);
  const bytes = async (name: string): Promise<Uint8Array | undefined> => {
    const f = byName.get(name);
    if (!f) return undefined;
    try {
      return new Uint8Array(await f.arrayBuffer());
    } catch (e) {
      if (e instanceof RangeError) throw tooBig(inFolder(label, name), f.size, e);
      throw new RoseError(
        'CHECKPOINT',
        `cannot read ${inFolder(label, name)}: ${e instanceof Error ? e.message : String(e)}`,
        'pick the folder again; the file may have been moved or changed since',
      );
    }
  };
  return { label, where: (name) => inFolder(label, name), bytes, text: async (name) => decodeText(await bytes(name)) };
}

export interface UrlFilesOptions {
  /** Called as a file's bytes arrive. */
  onProgress?: ReadProgress;
  /** The fetch to use (tests); default globalThis.fetch. */
  fetch?: (url: string) => Promise<Response>;
}

/**
 * A folder served over HTTP: `base` + file name, fetched when asked for. HTTP 404 is "no such file";
 * so is an HTML page where another file was asked for (a single-page-app fallback answers every path
 * with index.html). Any other failure is a RoseError that says what to try.
 */
export function urlFiles(base: string, opts: UrlFilesOptions = {}): CheckpointFiles {
  const folder = base.endsWith('/') ? base : `${base}/`;
  const get = opts.fetch ?? ((url: string) => globalThis.fetch(url));
  const where = (name: string) => `${folder}${name}`;

  async function bytes(name: string): Promise<Uint8Array | undefined> {
    const url = where(name);
    let res: Response;
    try {
      res = await get(url);
    } catch (e) {
      throw new RoseError(
        'CHECKPOINT',
        `cannot fetch ${url}: ${e instanceof Error ? e.message : String(e)}`,
        'check the URL and the network; a server on another site must allow cross-origin requests (CORS), as huggingface.co/<repo>/resolve/main/ does',
      );
    }
    if (res.status === 404) return undefined;
    if (res.status === 401 || res.status === 403) {
      throw new RoseError(
        'CHECKPOINT',
        `${url} needs a login (HTTP ${res.status}): the model is gated or private`,
        'download it with `rose pull` (HF_TOKEN), then pick its folder instead',
      );
    }
    if (!res.ok)
      throw new RoseError('CHECKPOINT', `${url}: HTTP ${res.status} ${res.statusText}`, 'check the URL; the server refused the file');
    if (!name.endsWith('.html') && /^text\/html/i.test(res.headers.get('content-type') ?? '')) return undefined;
    const total = Number(res.headers.get('content-length')) || undefined;
    try {
      if (!res.body || !opts.onProgress) return new Uint8Array(await res.arrayBuffer());
      return await readStream(res.body, total, (loaded) => opts.onProgress?.(name, loaded, total));
    } catch (e) {
      if (e instanceof RangeError) throw tooBig(url, total, e);
      throw new RoseError(
        'CHECKPOINT',
        `the download of ${url} failed: ${e instanceof Error ? e.message : String(e)}`,
        'check the network and try again',
      );
    }
  }

  return { label: folder, where, bytes, text: async (name) => decodeText(await bytes(name)) };
}

/**
 * A response body read into one buffer of the announced size, so that a large file is held once, not
 * twice; what does not fit (no length given, or a length that lied: a compressed transfer) is joined
 * at the end.
 */
async function readStream(
  body: ReadableStream<Uint8Array>,
  total: number | undefined,
  onBytes: (loaded: number) => void,
): Promise<Uint8Array> {
  const out = new Uint8Array(total ?? 0);
  const spill: Uint8Array[] = [];
  let inOut = 0;
  let loaded = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (spill.length === 0 && inOut + value.byteLength <= out.byteLength) {
      out.set(value, inOut);
      inOut += value.byteLength;
    } else spill.push(value);
    loaded += value.byteLength;
    onBytes(loaded);
  }
  if (spill.length === 0) return inOut === out.byteLength ? out : out.slice(0, inOut);
  const joined = new Uint8Array(loaded);
  joined.set(out.subarray(0, inOut));
  let at = inOut;
  for (const p of spill) {
    joined.set(p, at);
    at += p.byteLength;
  }
  return joined;
}
