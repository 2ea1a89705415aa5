/**
 * A reader for NumPy's .npy format (numpy/lib/format.py, versions 1.0, 2.0 and 3.0), the file that
 * `np.save` and `torch_tensor.numpy()` users produce. Floats only: f2, f4 and f8 in either byte order,
 * C or Fortran order. Every number in the header is checked against the file before it is used.
 *
 * Layout: the magic "\x93NUMPY", a major and a minor version byte, the header length (u16 LE in 1.0,
 * u32 LE in 2.0 and 3.0), the header (a Python dict literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, padded with spaces and a newline),
 * then the raw data.
 */
import { RoseError } from '../errors.ts';
import { numel } from '../kernels/backend.ts';
import { f16ToF32 } from '../kernels/cpu/dtype.ts';
import type { ByteSource } from '../model/safetensors.ts';

export const NPY_MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // "\x93NUMPY"

export interface NpyHeader {
  /** 'f2' | 'f4' | 'f8'. */
  kind: 'f2' | 'f4' | 'f8';
  littleEndian: boolean;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the data in the file. */
  dataOffset: number;
}

const ITEM_BYTES = { f2: 2, f4: 4, f8: 8 } as const;

export const startsWithNpyMagic = (head: Uint8Array): boolean => NPY_MAGIC.every((b, i) => head[i] === b);

/** Parses and checks the header, including that the file holds exactly the data it announces. */
export function readNpyHeader(src: ByteSource, label: string): NpyHeader {
  const bad = (what: string, hint = 'the file is truncated or not a .npy numpy wrote; save it again with np.save') =>
    new RoseError('INPUT', `${label}: ${what}`, hint);
  if (src.size < 10) throw bad(`${src.size} bytes is too short for a .npy file`);
  const head = src.read(0, 12 <= src.size ? 12 : 10);
  if (!startsWithNpyMagic(head)) throw bad('does not start with the .npy magic "\\x93NUMPY"');
  const major = head[6];
  if (major < 1 || major > 3) throw bad(`.npy format version ${major}.${head[7]} is not one rose-ts reads (1.0, 2.0, 3.0)`);
  const view = new DataView(head.buffer);
  const lengthBytes = major === 1 ? 2 : 4;
  if (src.size < 8 + lengthBytes) throw bad(`${src.size} bytes is too short for a version ${major} .npy header`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataOffset = 8 + lengthBytes + headerLength;
  if (dataOffset > src.size)
    throw bad(`the header says it is ${headerLength} bytes, but the file ends ${dataOffset - src.size} bytes before it does`);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(src.read(8 + lengthBytes, headerLength));
  } catch {
    throw bad('the header is not valid text');
  }

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw bad(`the header ${JSON.stringify(text.trim().slice(0, 200))} lacks 'descr', 'fortran_order' or 'shape'`);
  }
  const m = /^([<>=|])(f[248])$/.exec(descr);
  if (!m) {
    throw bad(
      `dtype ${JSON.stringify(descr)} is not a float rose diff reads`,
      'save float16, float32 or float64 (e.g. np.save(path, a.astype(np.float32)); for bf16 torch tensors, .float().numpy())',
    );
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`shape (${shapeText}) is not a tuple of non-negative integers`);

  const kind = m[2] as NpyHeader['kind'];
  // '=' is native order; every platform Node runs on here is little-endian, as numpy's writers are.
  const littleEndian = m[1] !== '>';
  const need = numel(shape) * ITEM_BYTES[kind];
  const have = src.size - dataOffset;
  if (have < need)
    throw bad(
      `${descr} (${shape.join(', ')}) needs ${need} bytes of data but the file holds ${have}: it is truncated`,
      'the dump was cut short (a full disk, an interrupted copy); write it again',
    );
  if (have > need) throw bad(`${descr} (${shape.join(', ')}) needs ${need} bytes of data but the file holds ${have}`);
  return { kind, littleEndian, fortranOrder: fortran === 'True', shape, dataOffset };
}

/** The data of a .npy file as f32 (f2, f4) or f64 (f8) values in C (row-major) order. */
export function readNpyData(src: ByteSource, header: NpyHeader): Float32Array | Float64Array {
  const { kind, littleEndian, shape, dataOffset } = header;
  const n = numel(shape);
  const bytes = src.read(dataOffset, n * ITEM_BYTES[kind]); // a fresh, aligned array
  const view = new DataView(bytes.buffer);
  let data: Float32Array | Float64Array;
  if (kind === 'f2') {
    const halves = new Uint16Array(n);
    for (let i = 0; i < n; i++) halves[i] = view.getUint16(2 * i, littleEndian);
    data = f16ToF32(halves);
  } else if (kind === 'f4') {
    data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(4 * i, littleEndian);
  } else {
    data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat64(8 * i, littleEndian);
  }
  return header.fortranOrder && shape.length > 1 ? fortranToC(data, shape) : data;
}

/** Reorders column-major (first index fastest) values into row-major order. */
function fortranToC<A extends Float32Array | Float64Array>(src: A, shape: readonly number[]): A {
  const out = new (src.constructor as new (n: number) => A)(src.length);
  const fStride = shape.map((_, i) => numel(shape.slice(0, i))); // Fortran strides, in elements
  const index = new Array<number>(shape.length).fill(0); // the C-order multi-index of element c
  for (let c = 0; c < src.length; c++) {
    let f = 0;
    for (let d = 0; d < shape.length; d++) f += index[d] * fStride[d];
    out[c] = src[f];
    for (let d = shape.length - 1; d >= 0 && ++index[d] === shape[d]; d--) index[d] = 0;
  }
  return out;
}
