/**
 * A safetensors reader and writer, written here because no maintained TypeScript one exists.
 *
 * Format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON (the header), then the data area.
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (relative to the start
 * of the data area); the optional key "__metadata__" maps strings to strings.
 *
 * The header comes from a file we did not write, so every number in it is checked before we use it,
 * and no buffer is ever sized by a number we have not checked against the real file size. Opening
 * reads only the header; each tensor is read by itself with a positioned read when asked for.
 *
 * Errors: a malformed file or shard index is RoseError('SAFETENSORS'); a dtype we cannot compute
 * with is RoseError('DTYPE'); a missing file, shard or tensor is RoseError('CHECKPOINT').
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DType, HostWeight } from '../kernels/backend.ts';
import { RoseError } from '../errors.ts';
import { isObject } from '../json.ts';
import { writeOutputFile } from '../outputFile.ts';
import type { CheckpointFiles } from './files.ts';

// --- byte access --------------------------------------------------------------------------------

/**
 * Random access to the bytes of one file. The parser only talks to this, so the same code runs on a
 * file (Node), on an in-memory array (tests, fuzzing) and later on a browser File or fetch result.
 */
export interface ByteSource {
  /** Total length in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`, in a fresh array the caller owns (byteOffset 0). */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

/** readSync takes at most 2^31 − 1 bytes per call; stay well below it. */
const READ_CHUNK = 1 << 30;

/**
 * A file opened with node:fs; reads are positioned, so nothing but the requested bytes is loaded.
 * `chunk`: the most bytes one readSync call asks for (tests pass a few, to read in several pieces).
 */
export function fileByteSource(path: string, chunk = READ_CHUNK): ByteSource {
  let fd: number;
  let size: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw ioError(path, e);
  }
  try {
    const st = fstatSync(fd);
    // openSync succeeds on a directory on Linux; refuse it here rather than fail on the first read.
    if (!st.isFile()) throw new RoseError('CHECKPOINT', `${path} is not a regular file`, 'pass the path of a .safetensors file');
    size = st.size;
  } catch (e) {
    closeSync(fd);
    throw e instanceof RoseError ? e : ioError(path, e);
  }
  let open = true;
  return {
    size,
    read(offset, length) {
      if (!open) throw new Error(`${path}: read after close`);
      checkRange(path, size, offset, length);
      const out = new Uint8Array(length);
      for (let done = 0; done < length; ) {
        let n: number;
        try {
          n = readSync(fd, out, done, Math.min(length - done, chunk), offset + done);
        } catch (e) {
          throw ioError(path, e);
        }
        // The size was checked at open, so a short read means the file shrank under us.
        if (n === 0) {
          throw new RoseError(
            'SAFETENSORS',
            `${path}: the file ends early: bytes [${offset + done}, ${offset + length}) could not be read`,
            'the file was truncated or replaced while it was open; re-download it',
          );
        }
        done += n;
      }
      return out;
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** An in-memory file. Reads return copies, like the file source, so callers never alias `bytes`. */
export function memoryByteSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read(offset, length) {
      checkRange('<memory>', bytes.byteLength, offset, length);
      return bytes.slice(offset, offset + length);
    },
    close() {},
  };
}

/** The parser never asks for bytes outside the file; this guards against our own bugs. */
function checkRange(label: string, size: number, offset: number, length: number): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= size)) {
    throw new Error(`${label}: read of ${length} bytes at ${offset} is outside the ${size}-byte source`);
  }
}

function ioError(path: string, e: unknown): RoseError {
  const code = e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
  if (code === 'ENOENT') return new RoseError('CHECKPOINT', `${path} does not exist`, 'check the path to the checkpoint');
  const msg = e instanceof Error ? e.message : String(e);
  return new RoseError('CHECKPOINT', `cannot read ${path}: ${msg}`, 'check that the file exists and is readable');
}

// --- dtypes -------------------------------------------------------------------------------------

/**
 * Bits per element of every dtype the safetensors format defines. We need the size of dtypes we never
 * compute with, to validate every entry of the header at open (a checkpoint may carry int buffers).
 */
const DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ['BOOL', 8],
  ['U8', 8],
  ['I8', 8],
  ['I16', 16],
  ['U16', 16],
  ['F16', 16],
  ['BF16', 16],
  ['I32', 32],
  ['U32', 32],
  ['F32', 32],
  ['I64', 64],
  ['U64', 64],
  ['F64', 64],
  ['C64', 64],
  ['F4', 4],
  ['F6_E2M3', 6],
  ['F6_E3M2', 6],
]);

function dtypeBits(dtype: string): number | undefined {
  // Every 8-bit float variant (F8_E5M2, F8_E4M3, F8_E8M0, …) is one byte, whatever its exponent/mantissa split.
  return DTYPE_BITS.get(dtype) ?? (dtype.startsWith('F8_') ? 8 : undefined);
}

/** The dtypes we compute with. A Map, not an object literal, so "constructor" finds nothing. */
const SUPPORTED: ReadonlyMap<string, DType> = new Map([
  ['F32', 'f32'],
  ['F16', 'f16'],
  ['BF16', 'bf16'],
]);
const SUPPORTED_HINT = 'rose-ts computes with F32, F16 and BF16 tensors; convert the checkpoint to one of them';

// --- header -------------------------------------------------------------------------------------

/** One tensor of a file. `begin`/`end` are absolute byte offsets in the file, end exclusive. */
export interface TensorInfo {
  name: string;
  /** The safetensors dtype string as stored ('F32', 'BF16', 'I8', ...). */
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** The reference implementation's cap: no real header is near it, and it bounds the one allocation. */
const MAX_HEADER_BYTES = 100_000_000;

const CORRUPT_HINT = 'the file is truncated, corrupted or not a safetensors file; download or export it again';

interface Header {
  tensors: Map<string, TensorInfo>;
  /** Names in data-offset order: reading them in turn reads the file front to back. */
  order: string[];
  metadata: Record<string, string>;
}

/** Quote a name from the file for a message, bounded so a hostile name cannot flood the terminal. */
const q = (s: string): string => (s.length > 120 ? `${JSON.stringify(s.slice(0, 120))}…` : JSON.stringify(s));

function parseHeader(src: ByteSource, label: string): Header {
  const bad = (what: string, hint = CORRUPT_HINT) => new RoseError('SAFETENSORS', `${label}: ${what}`, hint);

  if (src.size < 8) throw bad(`file is ${src.size} bytes, too short for the 8-byte header length`);
  const prefix = src.read(0, 8);
  // A u64 does not fit a double; compare as BigInt before converting.
  const n64 = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  const room = src.size - 8;
  if (n64 > BigInt(room)) throw bad(`header length says ${n64} bytes but only ${room} bytes follow it`);
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw bad(`header length ${n64} is over the ${MAX_HEADER_BYTES}-byte cap`);
  const n = Number(n64);
  const dataStart = 8 + n;
  const dataLen = src.size - dataStart;

  const headerBytes = src.read(8, n);
  let json: unknown;
  try {
    // fatal: invalid UTF-8 is an error, not silently replaced with U+FFFD.
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    const why = e instanceof SyntaxError ? e.message : 'it is not valid UTF-8';
    throw bad(`header is not valid UTF-8 JSON (${why.slice(0, 200)})`);
  }
  if (!isObject(json))
    throw bad(`header is ${json === null ? 'null' : Array.isArray(json) ? 'an array' : `a ${typeof json}`}, not a JSON object`);

  let metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
        throw bad('__metadata__ is not an object of string → string');
      }
      // fromEntries defines own properties, so a key "__proto__" cannot replace the prototype.
      metadata = Object.fromEntries(Object.entries(entry as Record<string, string>));
      continue;
    }
    const t = `tensor ${q(name)}`;
    if (!isObject(entry)) throw bad(`${t}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;

    if (typeof dtype !== 'string') throw bad(`${t}: dtype is missing or not a string`);
    const bits = dtypeBits(dtype);
    if (bits === undefined) {
      // Without its element size we cannot check this entry's bytes, so even an unused one is fatal.
      throw new RoseError(
        'DTYPE',
        `${label}: ${t} has unknown dtype ${q(dtype)}`,
        `this is not a safetensors dtype rose-ts knows; ${SUPPORTED_HINT}`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`${t}: shape must be an array of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(`${t}: data_offsets must be two non-negative integers [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) throw bad(`${t}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) throw bad(`${t}: data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data area`);

    const span = end - begin;
    const need = byteSize(shape as number[], bits);
    if (need !== BigInt(span)) {
      throw bad(
        `${t}: ${dtype} ${dims(shape as number[])} needs ${showBytes(need)} bytes but data_offsets [${begin}, ${end}] hold ${span}`,
      );
    }
    tensors.set(name, {
      name,
      dtype,
      shape: (shape as number[]).map((d) => d + 0 /* -0 → 0 */),
      begin: dataStart + begin,
      end: dataStart + end,
    });
  }

  // Sorted by position, each tensor must start at or after the end of the one before it.
  // Gaps and trailing bytes are tolerated (they are harmless); shared bytes are not.
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) throw bad(`tensors ${q(sorted[i - 1].name)} and ${q(sorted[i].name)} overlap`);
  }
  return { tensors, order: sorted.map((t) => t.name), metadata };
}

/**
 * Bytes of a tensor, or undefined when that is above 2^53 (no file is that big) or not whole bytes.
 * BigInt with an early exit: a hostile shape like [2^40, 2^40] neither loses precision nor builds a
 * huge number.
 */
function byteSize(shape: readonly number[], bits: number): bigint | undefined {
  if (shape.includes(0)) return 0n;
  const maxElems = (BigInt(Number.MAX_SAFE_INTEGER) * 8n) / BigInt(bits);
  let numel = 1n;
  for (const d of shape) {
    numel *= BigInt(d);
    if (numel > maxElems) return undefined;
  }
  const totalBits = numel * BigInt(bits);
  // Sub-byte dtypes (F4, F6) must fill whole bytes; otherwise no span can match.
  return totalBits % 8n === 0n ? totalBits / 8n : undefined;
}

/** A shape for a message, bounded: a hostile header may hold millions of dimensions. */
const dims = (shape: readonly number[]) => `[${shape.slice(0, 8).join(', ')}${shape.length > 8 ? `, … (${shape.length} dims)` : ''}]`;

/** byteSize for a message. */
const showBytes = (b: bigint | undefined) => (b === undefined ? 'an impossible number of' : `${b}`);

// --- one file -----------------------------------------------------------------------------------

/** One .safetensors file. Holds the file open until close(). */
export class SafetensorsFile {
  /** The header's "__metadata__" (e.g. {format: 'pt'}); {} when absent. */
  readonly metadata: Record<string, string>;
  private readonly tensors: Map<string, TensorInfo>;
  private readonly order: string[];

  private constructor(
    private readonly source: ByteSource,
    /** The path (or label) that every message names. */
    readonly label: string,
  ) {
    const header = parseHeader(source, label);
    this.metadata = header.metadata;
    this.tensors = header.tensors;
    this.order = header.order;
  }

  /** Opens a file and validates its header; reads no tensor data. */
  static open(path: string): SafetensorsFile {
    return SafetensorsFile.fromSource(fileByteSource(path), path);
  }

  /** Parses an in-memory file (tests, fuzzing, a browser download). */
  static fromBytes(bytes: Uint8Array, label: string): SafetensorsFile {
    return SafetensorsFile.fromSource(memoryByteSource(bytes), label);
  }

  /** Parses any ByteSource; takes ownership of it (closed on failure and by close()). */
  static fromSource(source: ByteSource, label: string): SafetensorsFile {
    try {
      return new SafetensorsFile(source, label);
    } catch (e) {
      source.close();
      throw e;
    }
  }

  /** Tensor names in data-offset order. */
  names(): string[] {
    return [...this.order];
  }

  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name);
    // A copy: callers must not be able to corrupt the validated table.
    return t && { ...t, shape: [...t.shape] };
  }

  /** Reads one tensor's bytes (a fresh array with byteOffset 0, so typed views of it are aligned). */
  read(name: string): HostWeight {
    const t = this.tensors.get(name);
    if (!t) {
      throw new RoseError(
        'CHECKPOINT',
        `${this.label} has no tensor ${q(name)}`,
        `it holds ${this.tensors.size} tensors; check that the checkpoint matches the model`,
      );
    }
    // Checked here, not at open: a checkpoint may carry buffers (int, f64) the model never reads.
    const dtype = SUPPORTED.get(t.dtype);
    if (!dtype)
      throw new RoseError(
        'DTYPE',
        `${this.label}: tensor ${q(name)} has dtype ${t.dtype}, which rose-ts cannot compute with`,
        SUPPORTED_HINT,
      );
    return { name, dtype, shape: [...t.shape], bytes: this.source.read(t.begin, t.end - t.begin) };
  }

  close(): void {
    this.source.close();
  }
}

// --- a checkpoint folder ------------------------------------------------------------------------

/** A checkpoint's weights in one file, as save_pretrained writes a small model. */
export const SINGLE_FILE = 'model.safetensors';
/** Or in shards: this index's weight_map names the shard file of every tensor. */
export const SHARD_INDEX = 'model.safetensors.index.json';

export interface ShardIndex {
  /** (tensor name, shard file name), as weight_map lists them. */
  map: [string, string][];
  /** The shard file names, sorted. */
  shards: string[];
}

/**
 * model.safetensors.index.json, checked: every entry maps a tensor to a plain file name in the folder.
 * `hint` says what to do when the index itself is broken (rose pull: the repo's own file is).
 */
export function parseShardIndex(text: string, indexPath: string, hint = 'the shard index is corrupted; download it again'): ShardIndex {
  const bad = (what: string) => new RoseError('SAFETENSORS', `${indexPath}: ${what}`, hint);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message.slice(0, 200)})`);
  }
  if (!isObject(json) || !isObject(json.weight_map)) throw bad('has no "weight_map" object');
  const map = Object.entries(json.weight_map);
  if (map.length === 0) throw bad('weight_map lists no tensors');

  const shardNames = new Set<string>();
  for (const [name, shard] of map) {
    if (typeof shard !== 'string') throw bad(`weight_map maps ${q(name)} to a ${typeof shard}, not a file name`);
    // Shard names come from a downloaded file: never let one reach outside the folder.
    if (shard === '' || shard === '.' || shard === '..' || /[/\\:\0]/.test(shard)) {
      throw new RoseError(
        'CHECKPOINT',
        `${indexPath}: shard ${q(shard)} (for ${q(name)}) is not a plain file name`,
        'shards must be files in the checkpoint folder itself; the index may be malicious or corrupted',
      );
    }
    shardNames.add(shard);
  }
  return { map: map as [string, string][], shards: [...shardNames].sort() };
}

const missingShard = (indexPath: string, shard: string, folder: string): RoseError =>
  new RoseError(
    'CHECKPOINT',
    `${indexPath} lists shard ${q(shard)}, which is missing from ${folder}`,
    'the download is incomplete; fetch every shard the index lists',
  );

/**
 * A checkpoint folder: model.safetensors, or shards listed by model.safetensors.index.json
 * ({"weight_map": {name: shardFile}}). Like transformers, a single model.safetensors wins if both exist.
 * Every shard is opened (and its header validated) up front and stays open until close().
 */
export class SafetensorsCheckpoint {
  private constructor(
    private readonly files: SafetensorsFile[],
    /** name → the file that holds it. For shards, only what weight_map lists. */
    private readonly where: Map<string, SafetensorsFile>,
    private readonly order: string[],
  ) {}

  static open(dir: string): SafetensorsCheckpoint {
    const kind = (p: string) => {
      try {
        const st = statSync(p); // follows symlinks, as the Hugging Face cache uses them
        return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
      } catch {
        return 'none';
      }
    };
    const dirKind = kind(dir);
    if (dirKind !== 'dir') {
      throw new RoseError(
        'CHECKPOINT',
        dirKind === 'none' ? `checkpoint folder ${dir} does not exist` : `${dir} is not a folder`,
        'pass the folder that holds config.json and model.safetensors (or model.safetensors.index.json)',
      );
    }
    if (kind(join(dir, SINGLE_FILE)) === 'file') {
      const file = SafetensorsFile.open(join(dir, SINGLE_FILE));
      return new SafetensorsCheckpoint([file], new Map(file.names().map((n) => [n, file])), file.names());
    }
    if (kind(join(dir, SHARD_INDEX)) === 'file') return SafetensorsCheckpoint.openSharded(dir);
    throw new RoseError(
      'CHECKPOINT',
      `${dir} has neither ${SINGLE_FILE} nor ${SHARD_INDEX}`,
      'rose-ts reads safetensors checkpoints only; convert a PyTorch .bin checkpoint with transformers (save_pretrained(..., safe_serialization=True))',
    );
  }

  private static openSharded(dir: string): SafetensorsCheckpoint {
    const indexPath = join(dir, SHARD_INDEX);
    let text: string;
    try {
      // Stryker disable next-line StringLiteral: without an encoding readFileSync gives a Buffer, which JSON.parse reads as UTF-8 text all the same
      text = readFileSync(indexPath, 'utf8');
    } catch (e) {
      throw ioError(indexPath, e);
    }
    const index = parseShardIndex(text, indexPath);
    const files = new Map<string, SafetensorsFile>();
    try {
      for (const shard of index.shards) {
        const path = join(dir, shard);
        try {
          if (!statSync(path).isFile()) throw new Error('not a file');
        } catch {
          throw missingShard(indexPath, shard, dir);
        }
        files.set(shard, SafetensorsFile.open(path));
      }
      return SafetensorsCheckpoint.fromShards(indexPath, index, files);
    } catch (e) {
      for (const f of files.values()) f.close();
      throw e;
    }
  }

  /**
   * The checkpoint of a set of files (a folder picked in a browser, or a URL): model.safetensors, or
   * the shards model.safetensors.index.json lists, each read whole into memory.
   */
  static async fromFiles(files: CheckpointFiles): Promise<SafetensorsCheckpoint> {
    const single = await files.bytes(SINGLE_FILE);
    if (single !== undefined) {
      const file = SafetensorsFile.fromBytes(single, files.where(SINGLE_FILE));
      return new SafetensorsCheckpoint([file], new Map(file.names().map((n) => [n, file])), file.names());
    }
    const indexText = await files.text(SHARD_INDEX);
    if (indexText === undefined) {
      throw new RoseError(
        'CHECKPOINT',
        `${files.label} has neither ${SINGLE_FILE} nor ${SHARD_INDEX}`,
        'a checkpoint folder holds config.json next to model.safetensors (or its shards and model.safetensors.index.json)',
      );
    }
    const indexPath = files.where(SHARD_INDEX);
    const index = parseShardIndex(indexText, indexPath);
    const opened = new Map<string, SafetensorsFile>();
    for (const shard of index.shards) {
      const bytes = await files.bytes(shard);
      if (bytes === undefined) throw missingShard(indexPath, shard, files.label);
      opened.set(shard, SafetensorsFile.fromBytes(bytes, files.where(shard)));
    }
    return SafetensorsCheckpoint.fromShards(indexPath, index, opened);
  }

  /** A sharded checkpoint from its validated index and its opened shards (all of index.shards). */
  private static fromShards(indexPath: string, index: ShardIndex, files: Map<string, SafetensorsFile>): SafetensorsCheckpoint {
    const where = new Map<string, SafetensorsFile>();
    for (const [name, shard] of index.map) {
      const file = files.get(shard)!;
      if (!file.info(name)) {
        throw new RoseError(
          'CHECKPOINT',
          `${indexPath} places tensor ${q(name)} in ${q(shard)}, which does not hold it`,
          'the index and its shards are from different versions; download them again together',
        );
      }
      where.set(name, file);
    }
    // Shard by shard in file order, so reading names() in turn reads each file front to back.
    const order = [...files.values()].flatMap((f) => f.names().filter((n) => where.get(n) === f));
    return new SafetensorsCheckpoint([...files.values()], where, order);
  }

  /** Tensor names, shard by shard in data-offset order. */
  names(): string[] {
    return [...this.order];
  }

  /** A tensor's place: `file` is the path of the shard that holds it. */
  info(name: string): (TensorInfo & { file: string }) | undefined {
    const f = this.where.get(name);
    const t = f?.info(name);
    return f && t && { ...t, file: f.label };
  }

  read(name: string): HostWeight {
    const f = this.where.get(name);
    if (!f)
      throw new RoseError(
        'CHECKPOINT',
        `the checkpoint has no tensor ${q(name)}`,
        `it holds ${this.where.size} tensors; check that the checkpoint matches the model`,
      );
    return f.read(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

// --- writing ------------------------------------------------------------------------------------

export interface TensorToWrite {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: readonly number[];
  /** Little-endian bytes, numel × dtype size of them. */
  data: Uint8Array;
}

const WRITE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;

/** The 8-byte prefix + header, padded with spaces to 8 bytes as the reference writer does. */
function encodeHeader(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const cannot = (what: string) => new RoseError('SAFETENSORS', `cannot encode safetensors: ${what}`, 'this is a bug in the caller');
  // Built by hand, not via an object, so key order is the given order and "__proto__" is just a name.
  const parts: string[] = [];
  if (metadata) {
    for (const v of Object.values(metadata)) if (typeof v !== 'string') throw cannot('metadata values must be strings');
    parts.push(
      `"__metadata__":{${Object.entries(metadata)
        .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
        .join(',')}}`,
    );
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (typeof t.name !== 'string' || t.name === '__metadata__' || seen.has(t.name))
      throw cannot(`bad or duplicate tensor name ${q(String(t.name))}`);
    seen.add(t.name);
    const size = Object.hasOwn(WRITE_BYTES, t.dtype) ? WRITE_BYTES[t.dtype] : undefined;
    if (!size) throw cannot(`tensor ${q(t.name)} has dtype ${String(t.dtype)}; write F32, F16 or BF16`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw cannot(`tensor ${q(t.name)} has a bad shape ${dims(t.shape)}`);
    const need = byteSize(t.shape, size * 8);
    if (need !== BigInt(t.data.byteLength)) {
      throw cannot(`tensor ${q(t.name)} ${t.dtype} ${dims(t.shape)} needs ${showBytes(need)} bytes of data, got ${t.data.byteLength}`);
    }
    const end = offset + t.data.byteLength;
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad the byte length (not the character length) so the data area starts 8-byte aligned.
  const n = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + n).fill(0x20, 8); // spaces, then the JSON over them
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

/** A complete safetensors file in memory: tensors in the given order, header padded to 8 bytes. */
export function encodeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header = encodeHeader(tensors, metadata);
  const out = new Uint8Array(header.byteLength + tensors.reduce((s, t) => s + t.data.byteLength, 0));
  out.set(header);
  let at = header.byteLength;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Writes a safetensors file without building it in memory, through writeOutputFile: a regular file
 * (or a new path) goes to a temp file that is renamed into place, so a crash or a full disk never
 * leaves a torn file; a character device, a FIFO or `-` (stdout) is written straight through.
 */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): void {
  writeOutputFile(path, [encodeHeader(tensors, metadata), ...tensors.map((t) => t.data)], 'safetensors file');
}
