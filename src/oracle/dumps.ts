/**
 * The inputs of `rose diff`: what another backend dumps, opened as a set of named tensors.
 *
 *   a .safetensors file   its tensors by name (F32, F16, BF16), e.g. `rose logits` output
 *   a .npy file           one tensor (f2/f4/f8), named after the file: logits.0.npy → "logits.0"
 *   any other file        raw little-endian f32 (torch `.numpy().tofile`, llama.cpp dumps), one
 *                         tensor named after the file; its shape comes from --shape, or else from
 *                         the tensor it is compared with
 *   a folder              every .safetensors, .npy, .bin, .raw and .f32 file in it, as above, so a
 *                         per-layer dump (hidden.0.3.npy, …) compares stage by stage
 *
 * Files are recognised by content where they carry a signature (.npy magic, zip), by extension
 * otherwise. Tensors are read one at a time, when compared.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { RoseError } from '../errors.ts';
import { numel } from '../kernels/backend.ts';
import { widenToF32 } from '../kernels/cpu/dtype.ts';
import { type ByteSource, fileByteSource, SafetensorsFile } from '../model/safetensors.ts';
import { readNpyData, readNpyHeader, startsWithNpyMagic } from './npy.ts';

export interface DumpTensor {
  readonly name: string;
  /** The file that holds it, for messages. */
  readonly file: string;
  readonly format: 'safetensors' | 'npy' | 'raw';
  /** Undefined for a raw file without --shape: it takes the shape of the tensor it is compared with. */
  readonly shape: readonly number[] | undefined;
  /** Raw files: how many f32 values the file holds, to check a borrowed shape against. */
  readonly elements: number;
  /** The values, row-major; `shape` is required when the tensor's own shape is undefined. */
  read(shape?: readonly number[]): Float32Array | Float64Array;
}

export interface Dump {
  /** The path as given. */
  readonly path: string;
  /** One file holding one tensor (.npy or raw): it may be compared with a tensor of another name. */
  readonly single: boolean;
  readonly tensors: ReadonlyMap<string, DumpTensor>;
  /** A safetensors file's __metadata__ (rose-ts writes producer, backend and rows); {} otherwise. */
  readonly metadata: Record<string, string>;
  close(): void;
}

const RAW_EXTENSIONS = new Set(['.bin', '.raw', '.f32']);
const FOLDER_EXTENSIONS = new Set(['.safetensors', '.npy', ...RAW_EXTENSIONS]);
const CONVERT_HINT =
  'save each tensor as .npy (np.save), as raw little-endian f32 (tensor.float().numpy().tofile(path)), or into one .safetensors file';

/** Opens REF or OTHER. `side` names it in messages; `shape` (--shape) applies to raw files. */
export function openDump(path: string, side: string, shape?: readonly number[]): Dump {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new RoseError('INPUT', `${side} ${path} ${missing ? 'does not exist' : `cannot be read: ${(e as Error).message}`}`);
  }
  const opened: { close(): void }[] = [];
  try {
    const tensors = new Map<string, DumpTensor>();
    let metadata: Record<string, string> = {};
    const add = (t: DumpTensor) => {
      const before = tensors.get(t.name);
      if (before) {
        throw new RoseError('INPUT', `${side} ${path}: tensor "${t.name}" is in both ${before.file} and ${t.file}`, 'keep one of them');
      }
      tensors.set(t.name, t);
    };
    const files = isDir
      ? readdirSync(path)
          .sort()
          .map((f) => join(path, f))
          .filter((f) => statSync(f).isFile() && isTensorFile(f, side))
      : [path];
    for (const file of files) {
      const src = openSource(file, side);
      opened.push(src);
      const head = src.read(0, Math.min(src.size, 8));
      if (startsWithNpyMagic(head)) {
        add(npyTensor(src, file));
      } else if (extname(file) === '.safetensors') {
        src.close(); // SafetensorsFile opens its own source
        const st = SafetensorsFile.open(file);
        opened.push(st);
        for (const t of safetensorsTensors(st, file, side)) add(t);
        if (!isDir) metadata = st.metadata;
      } else {
        refuseForeign(file, side, head);
        add(rawTensor(src, file, side, shape));
      }
    }
    if (tensors.size === 0) {
      throw new RoseError('INPUT', `${side} ${path} is a folder with no .safetensors, .npy, .bin, .raw or .f32 file in it`, CONVERT_HINT);
    }
    const single = !isDir && tensors.size === 1 && !files[0].endsWith('.safetensors');
    return { path, single, tensors, metadata, close: () => closeAll(opened) };
  } catch (e) {
    closeAll(opened);
    throw e;
  }
}

function closeAll(opened: { close(): void }[]): void {
  for (const o of opened) o.close();
}

function openSource(file: string, side: string): ByteSource {
  try {
    return fileByteSource(file);
  } catch (e) {
    throw new RoseError('INPUT', `${side} ${file} cannot be opened: ${(e as Error).message}`);
  }
}

/** A tensor's name from its file: "dump/logits.0.npy" → "logits.0". */
const stem = (file: string): string => basename(file, extname(file));

/** In a folder: whether a file is one of ours; a foreign tensor format is refused, anything else skipped. */
function isTensorFile(file: string, side: string): boolean {
  if (FOLDER_EXTENSIONS.has(extname(file))) return true;
  refuseForeign(file, side);
  return false;
}

/**
 * Formats rose diff cannot read, recognised by extension or signature, are refused by name rather
 * than misread as raw floats. In a folder, returns undefined for files that are simply not tensors.
 */
function refuseForeign(file: string, side: string, head?: Uint8Array): undefined {
  const ext = extname(file).toLowerCase();
  const zip = head !== undefined && head[0] === 0x50 && head[1] === 0x4b; // "PK": .npz, torch.save
  const gguf = head !== undefined && String.fromCharCode(...head.subarray(0, 4)) === 'GGUF';
  if (zip || ['.npz', '.pt', '.pth', '.ckpt'].includes(ext))
    throw new RoseError('INPUT', `${side} ${file} is a zip archive (np.savez or torch.save), which rose diff does not read`, CONVERT_HINT);
  if (gguf || ext === '.gguf') throw new RoseError('INPUT', `${side} ${file} is a GGUF model file, not a tensor dump`, CONVERT_HINT);
  return undefined;
}

function npyTensor(src: ByteSource, file: string): DumpTensor {
  const header = readNpyHeader(src, file);
  return {
    name: stem(file),
    file,
    format: 'npy',
    shape: header.shape,
    elements: numel(header.shape),
    read: () => readNpyData(src, header),
  };
}

function safetensorsTensors(st: SafetensorsFile, file: string, side: string): DumpTensor[] {
  return st.names().map((name) => {
    const info = st.info(name)!;
    if (!['F32', 'F16', 'BF16'].includes(info.dtype)) {
      throw new RoseError(
        'INPUT',
        `${side} ${file}: tensor "${name}" is ${info.dtype}; rose diff reads F32, F16 and BF16 tensors`,
        'save it as F32 (torch: tensor.float(); numpy: a.astype(np.float32))',
      );
    }
    return {
      name,
      file,
      format: 'safetensors' as const,
      shape: info.shape,
      elements: numel(info.shape),
      read: () => {
        const w = st.read(name);
        return widenToF32(w.dtype, w.bytes);
      },
    };
  });
}

function rawTensor(src: ByteSource, file: string, side: string, shape: readonly number[] | undefined): DumpTensor {
  if (src.size % 4 !== 0) {
    throw new RoseError(
      'INPUT',
      `${side} ${file} is ${src.size} bytes, not a whole number of f32 values: a raw dump is little-endian f32 with nothing else`,
      'check that it is f32 (not f16, f64 or text) and was written completely',
    );
  }
  const elements = src.size / 4;
  if (shape) checkRawShape(file, side, elements, shape, '--shape');
  return {
    name: stem(file),
    file,
    format: 'raw',
    shape,
    elements,
    read: (given) => {
      const s = shape ?? given;
      if (!s) throw new Error(`raw tensor ${file} read without a shape`);
      checkRawShape(file, side, elements, s, 'the tensor it is compared with');
      const bytes = src.read(0, src.size);
      const view = new DataView(bytes.buffer);
      const out = new Float32Array(elements);
      for (let i = 0; i < elements; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    },
  };
}

export function checkRawShape(file: string, side: string, elements: number, shape: readonly number[], from: string): void {
  const need = numel(shape);
  if (need !== elements) {
    throw new RoseError(
      'INPUT',
      `${side} ${file} holds ${elements} f32 values (${elements * 4} bytes) but the shape [${shape.join(', ')}] from ${from} needs ${need}`,
      'a raw dump must be exactly T × V little-endian f32 values; check --shape and that the file is f32 and complete',
    );
  }
}
