import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoseError, type RoseErrorCode } from '../../src/errors.ts';
import {
  SafetensorsCheckpoint,
  SafetensorsFile,
  encodeSafetensors,
  fileByteSource,
  memoryByteSource,
  writeSafetensors,
  type ByteSource,
  type TensorToWrite,
} from '../../src/model/safetensors.ts';
import { roseError } from '../helpers/errors.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

/** Runs fn and checks it threw a RoseError with this code whose message matches. */
function expectRose(fn: () => unknown, code: RoseErrorCode, message?: string | RegExp): RoseError {
  const re = roseError(fn);
  expect(re.code, re.message).toBe(code);
  if (message !== undefined) expect(re.message).toMatch(message);
  expect(re.hint, 'every RoseError carries a hint').toBeTruthy();
  return re;
}

/** A file with a hand-written header (any string) and `data` bytes; `n` overrides the length prefix. */
function rawFile(header: string | object, data: number | Uint8Array = 0, n?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

/** Bytes 0, 1, 2, ... offset by a seed, so every tensor's content is distinct. */
const pattern = (n: number, seed = 0) => Uint8Array.from({ length: n }, (_, i) => (seed + i * 31) & 255);

const open = (bytes: Uint8Array) => SafetensorsFile.fromBytes(bytes, 'test.safetensors');

/** Opens and reads every tensor: the full path a loader takes. */
function readAll(bytes: Uint8Array): void {
  const f = open(bytes);
  for (const name of f.names()) f.read(name);
  f.close();
}

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'rose-st-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

// --- the real fixtures ---------------------------------------------------------------------------

describe('fixtures', () => {
  const cases = [
    { dir: 'tiny-mha-f32', dtype: 'F32', hostDtype: 'f32', count: 21, embed: [512, 64], lmHead: true },
    { dir: 'tiny-gqa-bf16-tied', dtype: 'BF16', hostDtype: 'bf16', count: 29, embed: [1000, 96], lmHead: false },
    { dir: 'tiny-f16-bias', dtype: 'F16', hostDtype: 'f16', count: 35, embed: [777, 128], lmHead: true },
  ] as const;

  for (const c of cases) {
    it(`${c.dir}/model.safetensors: names, dtypes, shapes and bytes`, () => {
      const path = join(FIXTURES, c.dir, 'model.safetensors');
      const raw = readFileSync(path);
      const f = SafetensorsFile.open(path);
      try {
        expect(f.metadata).toEqual({ format: 'pt' });
        expect(f.names()).toHaveLength(c.count);
        expect(f.info('model.embed_tokens.weight')).toMatchObject({ dtype: c.dtype, shape: c.embed });
        expect(f.info('lm_head.weight') !== undefined).toBe(c.lmHead);
        expect(f.info('model.norm.weight')?.shape).toEqual([c.embed[1]]);
        for (const name of f.names()) {
          const info = f.info(name)!;
          expect(info.dtype).toBe(c.dtype);
          const w = f.read(name);
          expect(w.name).toBe(name);
          expect(w.dtype).toBe(c.hostDtype);
          expect(w.shape).toEqual(info.shape);
          expect(w.bytes.byteLength).toBe(info.shape.reduce((a, b) => a * b, 1) * (c.dtype === 'F32' ? 4 : 2));
          expect(w.bytes.byteOffset).toBe(0);
          // The bytes are exactly the file's bytes at the absolute offsets info() reports.
          expect(Buffer.from(w.bytes).equals(raw.subarray(info.begin, info.end))).toBe(true);
        }
        // names() is in file order: each tensor starts where the previous one ended.
        const infos = f.names().map((n) => f.info(n)!);
        for (let i = 1; i < infos.length; i++) expect(infos[i].begin).toBe(infos[i - 1].end);
        expect(infos.at(-1)!.end).toBe(raw.length);
      } finally {
        f.close();
      }
    });
  }

  it('tiny-mha-f32: absolute offsets include the 8-byte prefix and the header', () => {
    const f = SafetensorsFile.open(join(FIXTURES, 'tiny-mha-f32', 'model.safetensors'));
    // header is 2144 bytes; embed_tokens follows lm_head (131072 bytes) in the data area.
    expect(f.info('model.embed_tokens.weight')).toEqual({
      name: 'model.embed_tokens.weight',
      dtype: 'F32',
      shape: [512, 64],
      begin: 8 + 2144 + 131072,
      end: 8 + 2144 + 262144,
    });
    f.close();
  });

  it('tiny-f16-bias has biases on q/k/v/o and the MLP', () => {
    const f = SafetensorsFile.open(join(FIXTURES, 'tiny-f16-bias', 'model.safetensors'));
    for (const p of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj']) {
      expect(f.info(`model.layers.0.${p}.bias`)).toMatchObject({ dtype: 'F16', shape: [p.startsWith('mlp') ? 256 : 128] });
    }
    expect(f.info('model.layers.1.mlp.down_proj.bias')?.shape).toEqual([128]);
    f.close();
  });

  it('tiny-gqa-bf16-tied has 2 kv heads of 16 and no lm_head', () => {
    const f = SafetensorsFile.open(join(FIXTURES, 'tiny-gqa-bf16-tied', 'model.safetensors'));
    expect(f.info('model.layers.0.self_attn.k_proj.weight')?.shape).toEqual([32, 96]);
    expect(f.info('model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([96, 96]);
    expect(f.names().some((n) => n.startsWith('lm_head'))).toBe(false);
    expectRose(() => f.read('lm_head.weight'), 'CHECKPOINT', 'lm_head.weight');
    f.close();
  });

  it('re-encoding each fixture file reproduces it byte for byte (same layout as the reference writer)', () => {
    for (const dir of ['tiny-mha-f32', 'tiny-gqa-bf16-tied', 'tiny-f16-bias']) {
      for (const file of ['model.safetensors', 'reference.safetensors']) {
        const path = join(FIXTURES, dir, file);
        const f = SafetensorsFile.open(path);
        const tensors = f.names().map((name) => {
          const w = f.read(name);
          return { name, dtype: f.info(name)!.dtype as TensorToWrite['dtype'], shape: [...w.shape], data: w.bytes };
        });
        const encoded = encodeSafetensors(tensors, f.metadata);
        f.close();
        expect(Buffer.from(encoded).equals(readFileSync(path)), path).toBe(true);
      }
    }
  });

  it('the fixture directories open as checkpoints', () => {
    for (const dir of ['tiny-mha-f32', 'tiny-gqa-bf16-tied', 'tiny-f16-bias']) {
      const ckpt = SafetensorsCheckpoint.open(join(FIXTURES, dir));
      expect(ckpt.info('model.norm.weight')?.file).toBe(join(FIXTURES, dir, 'model.safetensors'));
      expect(ckpt.read('model.norm.weight').bytes.byteLength).toBeGreaterThan(0);
      expect(ckpt.info('no.such.tensor')).toBeUndefined();
      ckpt.close();
      // close() closes the file: a read now is a bug in the caller, not a silent success
      expect(() => ckpt.read('model.norm.weight')).toThrow('read after close');
    }
  });
});

// --- writer and round trip -----------------------------------------------------------------------

const SIZE = { F32: 4, F16: 2, BF16: 2 } as const;

const tensorArb = fc
  .record({
    name: fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 })),
    dtype: fc.constantFrom('F32', 'F16', 'BF16' as const),
    shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }),
    seed: fc.nat(255),
  })
  .filter((t) => t.name !== '__metadata__')
  .map(
    ({ name, dtype, shape, seed }): TensorToWrite => ({
      name,
      dtype,
      shape,
      data: pattern(shape.reduce((a, b) => a * b, 1) * SIZE[dtype], seed),
    }),
  );

describe('encodeSafetensors / writeSafetensors', () => {
  it('round-trips any set of tensors and metadata through fromBytes', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(tensorArb, { selector: (t) => t.name, maxLength: 6 }),
        fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), { nil: undefined }),
        (tensors, metadata) => {
          const bytes = encodeSafetensors(tensors, metadata);
          const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
          expect(n % 8).toBe(0); // the data area starts 8-byte aligned
          const f = open(bytes);
          expect(f.metadata).toEqual(metadata ? Object.fromEntries(Object.entries(metadata)) : {});
          expect([...f.names()].sort()).toEqual(tensors.map((t) => t.name).sort());
          let prevBegin = 0;
          for (const t of tensors) {
            const info = f.info(t.name)!;
            expect(info.begin).toBeGreaterThanOrEqual(prevBegin); // laid out in the given order
            prevBegin = info.begin;
            const w = f.read(t.name);
            expect(w.dtype).toBe(t.dtype.toLowerCase());
            expect(w.shape).toEqual(t.shape);
            expect(Array.from(w.bytes)).toEqual(Array.from(t.data));
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('pads the header with spaces exactly as the reference writer does', () => {
    const header = (bytes: Uint8Array) => ({
      n: Number(new DataView(bytes.buffer).getBigUint64(0, true)),
      text: new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true)))),
    });
    expect(header(encodeSafetensors([]))).toEqual({ n: 8, text: '{}      ' });
    expect(header(encodeSafetensors([], { framework: 'pt' }))).toEqual({ n: 40, text: '{"__metadata__":{"framework":"pt"}}     ' });
    const f32 = new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer);
    const a = encodeSafetensors([{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: f32 }]);
    expect(header(a)).toEqual({ n: 64, text: '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}' });
    expect(Array.from(a.subarray(72))).toEqual(Array.from(f32));
    const b = encodeSafetensors([{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data: f32 }]);
    expect(header(b)).toEqual({ n: 72, text: '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ' });
  });

  it('pads by UTF-8 byte length, not character count', () => {
    const bytes = encodeSafetensors([{ name: 'é😀', dtype: 'F16', shape: [1], data: pattern(2) }]);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    expect(open(bytes).names()).toEqual(['é😀']);
  });

  it('refuses to encode inconsistent input', () => {
    expectRose(() => encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [3], data: pattern(8) }]), 'SAFETENSORS', 'needs 12 bytes');
    const t = { name: 'a', dtype: 'F16' as const, shape: [2], data: pattern(4) };
    expectRose(() => encodeSafetensors([t, t]), 'SAFETENSORS', 'duplicate');
    expectRose(() => encodeSafetensors([{ ...t, name: '__metadata__' }]), 'SAFETENSORS', '__metadata__');
    expectRose(() => encodeSafetensors([{ ...t, dtype: 'I8' as never }]), 'SAFETENSORS', 'I8');
    expectRose(() => encodeSafetensors([{ ...t, shape: [-2] }]), 'SAFETENSORS', 'shape');
    expectRose(() => encodeSafetensors([t], { format: 1 as never }), 'SAFETENSORS', 'metadata values must be strings');
  });

  it('writes a tensor with a zero dimension, and an empty file', () => {
    const empty = { name: 'e', dtype: 'F32' as const, shape: [0, 3], data: new Uint8Array(0) };
    const f = open(encodeSafetensors([empty]));
    expect([f.info('e')?.shape, f.read('e').bytes.byteLength]).toEqual([[0, 3], 0]);
    expect(Array.from(encodeSafetensors([]))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...new TextEncoder().encode('{}      ')]);
  });

  it('writes through a temporary file and leaves nothing else behind', () => {
    const dir = tmp();
    const path = join(dir, 'out.safetensors');
    writeFileSync(path, 'old contents');
    const tensors: TensorToWrite[] = [
      { name: 'x', dtype: 'BF16', shape: [2, 3], data: pattern(12, 7) },
      { name: 'y', dtype: 'F32', shape: [], data: pattern(4, 9) },
    ];
    writeSafetensors(path, tensors, { format: 'pt' });
    expect(readdirSync(dir)).toEqual(['out.safetensors']);
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(encodeSafetensors(tensors, { format: 'pt' })))).toBe(true);
    const f = SafetensorsFile.open(path);
    expect(Array.from(f.read('y').bytes)).toEqual(Array.from(pattern(4, 9)));
    f.close();
  });

  it('reports an unwritable path as a RoseError and leaves no temporary file', () => {
    const dir = tmp();
    const e = expectRose(() => writeSafetensors(join(dir, 'no-such-dir', 'x.safetensors'), []), 'INPUT', 'no-such-dir');
    expect(e.message).toContain('safetensors file'); // what was being written
    expect(readdirSync(dir)).toEqual([]);
  });
});

// --- malformed files -----------------------------------------------------------------------------

describe('malformed files', () => {
  const good = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  it('a file shorter than the length prefix', () => {
    expectRose(() => open(new Uint8Array(5)), 'SAFETENSORS', /test\.safetensors.*5 bytes/);
    expectRose(() => open(new Uint8Array(0)), 'SAFETENSORS', 'too short');
  });

  it('a header length that lies', () => {
    expectRose(() => open(rawFile(good, 8, 1_000_000n)), 'SAFETENSORS', /header length says 1000000 bytes/);
    expectRose(() => open(rawFile(good, 8, 2n ** 64n - 1n)), 'SAFETENSORS', '18446744073709551615');
  });

  it('a header over the 100 MB cap is refused before anything is allocated', () => {
    // A fake 1 GB source: only the prefix may be read, anything else would be a bug.
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, 500_000_000n, true);
    const reads: number[] = [];
    const src: ByteSource = {
      size: 1e9,
      read(offset, length) {
        reads.push(length);
        if (offset !== 0 || length !== 8) throw new Error('read past the prefix');
        return prefix.slice();
      },
      close() {},
    };
    expectRose(() => SafetensorsFile.fromSource(src, 'big.safetensors'), 'SAFETENSORS', /big\.safetensors.*100000000-byte cap/);
    expect(reads).toEqual([8]);
  });

  it('a header that is not UTF-8 JSON', () => {
    expectRose(() => open(rawFile('{"t": {"dtype": ')), 'SAFETENSORS', 'not valid UTF-8 JSON');
    expectRose(() => open(rawFile('')), 'SAFETENSORS', 'not valid UTF-8 JSON');
    const bytes = rawFile('{"t":1}');
    bytes[10] = 0xff; // inside the key: invalid UTF-8
    expectRose(() => open(bytes), 'SAFETENSORS', 'header is not valid UTF-8 JSON (it is not valid UTF-8)');
  });

  it('a header that is JSON but not an object', () => {
    expectRose(() => open(rawFile('[]')), 'SAFETENSORS', 'an array, not a JSON object');
    expectRose(() => open(rawFile('42')), 'SAFETENSORS', 'header is a number, not a JSON object');
    expectRose(() => open(rawFile('null')), 'SAFETENSORS', 'null, not a JSON object');
    expectRose(() => open(rawFile('"x"')), 'SAFETENSORS', 'not a JSON object');
  });

  it('malformed entries', () => {
    const bad = (entry: unknown, message: string | RegExp, data = 8) =>
      expectRose(() => open(rawFile({ 'w.0': entry }, data)), 'SAFETENSORS', message);
    bad(5, /"w\.0".*not an object/);
    bad([1, 2], 'not an object');
    bad({ shape: [2], data_offsets: [0, 8] }, /"w\.0": dtype is missing/);
    bad({ dtype: 7, shape: [2], data_offsets: [0, 8] }, 'dtype');
    bad({ dtype: 'F32', data_offsets: [0, 8] }, 'shape must be');
    bad({ dtype: 'F32', shape: [-2], data_offsets: [0, 8] }, 'shape must be');
    bad({ dtype: 'F32', shape: [1.5], data_offsets: [0, 8] }, 'shape must be');
    bad({ dtype: 'F32', shape: ['2'], data_offsets: [0, 8] }, 'shape must be');
    bad({ dtype: 'F32', shape: 2, data_offsets: [0, 8] }, 'shape must be');
    bad({ dtype: 'F32', shape: [2 ** 53], data_offsets: [0, 8] }, 'shape must be');
    bad({ dtype: 'F32', shape: [2] }, 'data_offsets must be');
    bad({ dtype: 'F32', shape: [2], data_offsets: [0] }, 'data_offsets must be');
    bad({ dtype: 'F32', shape: [2], data_offsets: [0, 8, 16] }, 'data_offsets must be');
    bad({ dtype: 'F32', shape: [2], data_offsets: [-8, 0] }, 'data_offsets must be');
    bad({ dtype: 'F32', shape: [2], data_offsets: ['0', '8'] }, 'data_offsets must be');
    bad({ dtype: 'F32', shape: [0], data_offsets: [8, 0] }, 'end before they begin');
  });

  it('offsets outside the data area', () => {
    expectRose(() => open(rawFile(good, 4)), 'SAFETENSORS', /"t".*\[0, 8\] run past the 4-byte data area/);
    expectRose(
      () => open(rawFile({ t: { dtype: 'F32', shape: [1], data_offsets: [2 ** 52, 2 ** 52 + 4] } }, 8)),
      'SAFETENSORS',
      'run past',
    );
    expectRose(() => open(rawFile({ t: { dtype: 'F32', shape: [1], data_offsets: [0, 1e300] } }, 8)), 'SAFETENSORS', 'data_offsets');
  });

  it('overlapping tensors', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    expectRose(() => open(rawFile(header, 12)), 'SAFETENSORS', /"a" and "b" overlap/);
    // Same span twice, listed in the other order.
    const twice = { b: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } };
    expectRose(() => open(rawFile(twice, 4)), 'SAFETENSORS', 'overlap');
    // A tensor nested inside a longer one.
    const nested = {
      big: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      x: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
      small: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    };
    expectRose(() => open(rawFile(nested, 20)), 'SAFETENSORS', /"big" and "small" overlap/);
  });

  it('gaps and trailing bytes are tolerated, and zero-size tensors may touch', () => {
    const header = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      e: { dtype: 'F32', shape: [0, 3], data_offsets: [4, 4] },
      b: { dtype: 'F16', shape: [1], data_offsets: [8, 10] },
    };
    const f = open(rawFile(header, pattern(16)));
    expect(f.names()).toEqual(['a', 'e', 'b']);
    expect(Array.from(f.read('b').bytes)).toEqual(Array.from(pattern(16).subarray(8, 10)));
    expect(f.read('e').bytes.byteLength).toBe(0);
  });

  it('an empty tensor at the offset where another begins is no overlap, and sorts first', () => {
    const header = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      e: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
    };
    expect(open(rawFile(header, 4)).names()).toEqual(['e', 'a']);
  });

  it('a shape of -0 (valid JSON) is read as 0', () => {
    const f = open(rawFile('{"t":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}}'));
    expect(Object.is(f.info('t')!.shape[0], 0)).toBe(true);
  });

  it('a sub-byte dtype must fill whole bytes', () => {
    // 3 F4 elements are 12 bits: no byte span holds them (not 1 byte, rounding down, nor 2).
    for (const span of [1, 2])
      expectRose(
        () => open(rawFile({ t: { dtype: 'F4', shape: [3], data_offsets: [0, span] } }, 2)),
        'SAFETENSORS',
        'F4 [3] needs an impossible number of bytes',
      );
  });

  it('dtype size × shape must equal the byte span', () => {
    expectRose(
      () => open(rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8)),
      'SAFETENSORS',
      /"t": F32 \[3\] needs 12 bytes but data_offsets \[0, 8\] hold 8/,
    );
    expectRose(() => open(rawFile({ t: { dtype: 'BF16', shape: [2, 2], data_offsets: [0, 4] } }, 8)), 'SAFETENSORS', 'needs 8 bytes');
    // The size of dtypes we never compute with is checked too.
    expectRose(() => open(rawFile({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 4] } }, 8)), 'SAFETENSORS', 'I64 [1] needs 8 bytes');
    // Sub-byte dtypes must fill whole bytes.
    expectRose(() => open(rawFile({ t: { dtype: 'F4', shape: [3], data_offsets: [0, 2] } }, 8)), 'SAFETENSORS', 'F4');
    expect(open(rawFile({ t: { dtype: 'F4', shape: [4], data_offsets: [0, 2] } }, 8)).info('t')?.dtype).toBe('F4');
  });

  it('huge shapes fail the size check without allocating or losing precision', () => {
    const huge =
      (shape: number[], end = 8) =>
      () =>
        open(rawFile({ t: { dtype: 'F32', shape, data_offsets: [0, end] } }, 8));
    expectRose(huge([2 ** 40, 2 ** 40]), 'SAFETENSORS', /\[1099511627776, 1099511627776\] needs an impossible number of bytes/);
    const many = expectRose(huge(Array(10_000).fill(2 ** 52)), 'SAFETENSORS', /impossible.*\(10000 dims\)|\(10000 dims\).*impossible/);
    expect(many.message.length).toBeLessThan(400); // the message stays readable
    // Exact where a double product would not be: (2^53 − 1) × 3 elements.
    expectRose(huge([2 ** 53 - 1, 3], 8), 'SAFETENSORS', 'impossible');
    expectRose(huge([2 ** 49, 2], 8), 'SAFETENSORS', `needs ${2 ** 52} bytes`);
    // …but a zero anywhere makes it empty, which is valid.
    const f = open(rawFile({ t: { dtype: 'F32', shape: [2 ** 40, 2 ** 40, 0], data_offsets: [0, 0] } }, 8));
    expect(f.read('t').bytes.byteLength).toBe(0);
  });

  it('an unknown dtype string fails at open, naming the tensor and the dtype', () => {
    const e = expectRose(() => open(rawFile({ 'w.q': { dtype: 'Q4_K', shape: [2], data_offsets: [0, 2] } }, 8)), 'DTYPE', /"w\.q".*"Q4_K"/);
    expect(e.hint).toMatch(/F32, F16 and BF16/);
  });

  it('a known but unsupported dtype opens, but reading that tensor is a DTYPE error', () => {
    const header = {
      'model.ids': { dtype: 'I8', shape: [4], data_offsets: [0, 4] },
      'model.f64': { dtype: 'F64', shape: [1], data_offsets: [8, 16] },
      'model.w': { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
    };
    const f = open(rawFile(header, pattern(16)));
    expect(f.info('model.ids')).toMatchObject({ dtype: 'I8', shape: [4] });
    expect(f.read('model.w').bytes.byteLength).toBe(4); // the rest of the file is usable
    const e = expectRose(() => f.read('model.ids'), 'DTYPE', /"model\.ids".*I8/);
    expect(e.hint).toMatch(/F32, F16 and BF16/);
    expectRose(() => f.read('model.f64'), 'DTYPE', /"model\.f64".*F64/);
  });

  it('a missing tensor is a CHECKPOINT error', () => {
    const f = open(rawFile(good, 8));
    expect(f.info('nope')).toBeUndefined();
    expectRose(() => f.read('nope'), 'CHECKPOINT', /test\.safetensors has no tensor "nope"/);
    // Names are data, not object keys: nothing is found through the prototype.
    expect(f.info('constructor')).toBeUndefined();
    expectRose(() => f.read('__proto__'), 'CHECKPOINT', '__proto__');
  });

  it('__metadata__ must map strings to strings', () => {
    expectRose(() => open(rawFile({ __metadata__: { format: 1 } })), 'SAFETENSORS', '__metadata__');
    expectRose(() => open(rawFile({ __metadata__: 'pt' })), 'SAFETENSORS', '__metadata__');
    const f = open(rawFile('{"__metadata__":{"__proto__":"x","format":"pt"}}'));
    expect(Object.getPrototypeOf(f.metadata)).toBe(Object.prototype);
    expect(f.metadata.format).toBe('pt');
    expect(Object.keys(f.metadata)).toContain('__proto__');
  });

  it('info() and read() hand out copies', () => {
    const f = open(encodeSafetensors([{ name: 't', dtype: 'F16', shape: [2], data: pattern(4) }]));
    f.info('t')!.shape[0] = 99;
    const w = f.read('t');
    w.bytes.fill(0);
    expect(f.info('t')!.shape).toEqual([2]);
    expect(Array.from(f.read('t').bytes)).toEqual(Array.from(pattern(4)));
  });
});

describe('every dtype of the format', () => {
  /** Bits per element of each dtype, from the safetensors format's own list (huggingface/safetensors, Dtype). */
  const FORMAT_BITS: [string, number][] = [
    ['BOOL', 8],
    ['U8', 8],
    ['I8', 8],
    ['F8_E5M2', 8],
    ['F8_E4M3', 8],
    ['F8_E8M0', 8],
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
    ['F8_E3M4', 8], // an 8-bit float the list above lacks: every F8_ variant is one byte
  ];

  it.each(FORMAT_BITS)('%s: 8 elements take %i bytes, and no other span is accepted', (dtype, bytes) => {
    const file = (span: number) => rawFile({ t: { dtype, shape: [2, 4], data_offsets: [0, span] } }, 128);
    const f = open(file(bytes));
    expect(f.info('t')).toMatchObject({ dtype, shape: [2, 4] });
    if (['F32', 'F16', 'BF16'].includes(dtype)) expect(f.read('t').bytes.byteLength).toBe(bytes);
    else expectRose(() => f.read('t'), 'DTYPE', `has dtype ${dtype}, which rose-ts cannot compute with`);
    for (const span of [bytes - 1, bytes + 1]) expectRose(() => open(file(span)), 'SAFETENSORS', `${dtype} [2, 4] needs ${bytes} bytes`);
  });
});

describe('messages stay bounded', () => {
  it('a long tensor name is quoted up to 120 characters, then …', () => {
    const name = `${'x'.repeat(119)}yz${'w'.repeat(300)}`;
    const e = expectRose(() => open(rawFile({ [name]: 5 })), 'SAFETENSORS', 'entry is not an object');
    expect(e.message).toContain(`tensor ${JSON.stringify(name.slice(0, 120))}…: entry`);
    expect(e.message).not.toContain('yz');
    const short = 'x'.repeat(120); // exactly 120: quoted whole
    expect(expectRose(() => open(rawFile({ [short]: 5 })), 'SAFETENSORS').message).toContain(`tensor ${JSON.stringify(short)}: entry`);
  });

  it('a shape is shown up to 8 dimensions, then how many there are', () => {
    const shape = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const e = expectRose(() => open(rawFile({ t: { dtype: 'F32', shape, data_offsets: [0, 8] } }, 8)), 'SAFETENSORS');
    expect(e.message).toContain('F32 [1, 2, 3, 4, 5, 6, 7, 8, … (9 dims)] needs 1451520 bytes');
    const eight = expectRose(
      () => open(rawFile({ t: { dtype: 'F32', shape: shape.slice(0, 8), data_offsets: [0, 8] } }, 8)),
      'SAFETENSORS',
    );
    expect(eight.message).toContain('F32 [1, 2, 3, 4, 5, 6, 7, 8] needs 161280 bytes');
  });
});

describe('byte sources guard their own range', () => {
  it('a read outside the source, or of a non-integer range, is a bug and throws (not a RoseError)', () => {
    const src = memoryByteSource(pattern(16));
    expect(Array.from(src.read(12, 4))).toEqual(Array.from(pattern(16).subarray(12)));
    expect(src.read(16, 0).byteLength).toBe(0);
    for (const [offset, length] of [
      [-1, 1],
      [0, 17],
      [16, 1],
      [0, -1],
      [1.5, 1],
      [0, 2.5],
      [2 ** 53, 0],
    ]) {
      expect(() => src.read(offset, length), `read(${offset}, ${length})`).toThrow(
        `<memory>: read of ${length} bytes at ${offset} is outside the 16-byte source`,
      );
    }
  });

  it('a file source reads in pieces of its chunk size, and names the bytes it could not read when the file shrinks', () => {
    const path = join(tmp(), 'bytes.bin');
    writeFileSync(path, pattern(10));
    const src = fileByteSource(path, 3); // 3 bytes per readSync
    expect(Array.from(src.read(1, 8))).toEqual(Array.from(pattern(10).subarray(1, 9)));
    truncateSync(path, 5);
    // Bytes 1..3 come in one piece, byte 4 in a short one, then the file ends: bytes [5, 9) are missing.
    expectRose(() => src.read(1, 8), 'SAFETENSORS', `${path}: the file ends early: bytes [5, 9) could not be read`);
    src.close();
  });

  it('a file that cannot be opened: a missing one, and any other failure with the system error', () => {
    const file = join(tmp(), 'plain.bin');
    writeFileSync(file, pattern(4));
    const missing = join(tmp(), 'absent.bin');
    expect(expectRose(() => fileByteSource(missing), 'CHECKPOINT').message).toBe(`${missing} does not exist`);
    const e = expectRose(() => fileByteSource(join(file, 'below')), 'CHECKPOINT');
    expect(e.message).toMatch(new RegExp(`^cannot read ${join(file, 'below').replace(/[.]/g, '\\.')}: ENOTDIR`));
    expect(e.hint).toBe('check that the file exists and is readable');
  });

  it('a file source: reads in range, refuses past its end, and not after close (closing twice is fine)', () => {
    const path = join(tmp(), 'bytes.bin');
    writeFileSync(path, pattern(10));
    const src = fileByteSource(path);
    expect(src.size).toBe(10);
    expect(Array.from(src.read(2, 3))).toEqual(Array.from(pattern(10).subarray(2, 5)));
    expect(() => src.read(8, 3)).toThrow(`${path}: read of 3 bytes at 8 is outside the 10-byte source`);
    src.close();
    expect(() => src.read(0, 1)).toThrow(`${path}: read after close`);
    src.close();
  });
});

// --- property tests: truncation and fuzzing --------------------------------------------------------

/**
 * A small valid file with a supported, an unsupported and an empty tensor and metadata. Made in a
 * hook, not at module load: a writer bug then fails these tests rather than the file's import (which
 * a mutation run cannot count as a failing test).
 */
let BASE: Uint8Array;
const makeBase = () =>
  encodeSafetensors(
    [
      { name: 'a', dtype: 'F32', shape: [2, 3], data: pattern(24, 1) },
      { name: 'b.bias', dtype: 'BF16', shape: [5], data: pattern(10, 2) },
      { name: 'empty', dtype: 'F16', shape: [0, 4], data: new Uint8Array(0) },
      { name: 'c', dtype: 'F16', shape: [3], data: pattern(6, 3) },
    ],
    { format: 'pt' },
  );

/** Opens and reads everything; any throw must be a RoseError. */
function survives(bytes: Uint8Array): void {
  try {
    readAll(bytes);
  } catch (e) {
    if (!(e instanceof RoseError)) throw new Error(`not a RoseError: ${String(e)}`);
  }
}

describe('properties', () => {
  beforeAll(() => {
    BASE = makeBase();
  });
  it('every proper prefix of a valid file is a SAFETENSORS error', () => {
    readAll(BASE);
    for (let len = 0; len < BASE.length; len++) expectRose(() => open(BASE.subarray(0, len)), 'SAFETENSORS');
  });

  it('random prefixes of a real fixture are SAFETENSORS errors', () => {
    const real = new Uint8Array(readFileSync(join(FIXTURES, 'tiny-gqa-bf16-tied', 'model.safetensors')));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: real.length - 1 }), (len) => {
        expectRose(() => open(real.subarray(0, len)), 'SAFETENSORS');
      }),
      { numRuns: 50 },
    );
  });

  it('random bytes never throw anything but RoseError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), survives), { numRuns: Number(process.env.FUZZ_RUNS ?? 300) });
    // Random bytes behind a plausible length prefix reach the JSON parser.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(220), (body, n) => {
        const bytes = new Uint8Array(8 + body.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(n), true);
        bytes.set(body, 8);
        survives(bytes);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });

  it('mutations of a valid file (flipped bytes, truncation, a new length prefix) never throw anything but RoseError', () => {
    const mutation = fc.oneof(
      fc
        .array(fc.tuple(fc.nat(BASE.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
        .map((flips) => (b: Uint8Array) => {
          const m = b.slice();
          for (const [i, v] of flips) m[i] = v;
          return m;
        }),
      fc.nat(BASE.length).map((len) => (b: Uint8Array) => b.slice(0, len)),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => (b: Uint8Array) => {
        if (b.length < 8) return b;
        const m = b.slice();
        new DataView(m.buffer).setBigUint64(0, n, true);
        return m;
      }),
      fc.integer({ min: -16, max: 16 }).map((d) => (b: Uint8Array) => {
        if (b.length < 8) return b;
        const m = b.slice();
        const dv = new DataView(m.buffer);
        const n = dv.getBigUint64(0, true) + BigInt(d);
        dv.setBigUint64(0, n < 0n ? 0n : n, true);
        return m;
      }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => survives(ms.reduce((b, m) => m(b), BASE))),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });

  it('header-level mutations (any JSON value in any field) never throw anything but RoseError', () => {
    const n = Number(new DataView(BASE.buffer).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(BASE.subarray(8, 8 + n))) as Record<string, Record<string, unknown>>;
    const data = BASE.subarray(8 + n);
    const keys = Object.keys(header);
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.constantFrom('dtype', 'shape', 'data_offsets', 'format', 'other'),
        fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.array(fc.integer({ min: -(2 ** 60), max: 2 ** 60 }), { maxLength: 3 }),
          fc.constantFrom('I8', 'F64', 'F8_E4M3', 'BOOL', 'Q4'),
        ),
        (key, field, value) => {
          const h = structuredClone(header);
          h[key][field] = value as unknown;
          survives(rawFile(h, data));
        },
      ),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });
});

// --- file handling -------------------------------------------------------------------------------

describe('SafetensorsFile.open', () => {
  it('reports a missing path and a directory as CHECKPOINT errors', () => {
    const dir = tmp();
    expectRose(() => SafetensorsFile.open(join(dir, 'nope.safetensors')), 'CHECKPOINT', /nope\.safetensors does not exist/);
    expectRose(() => SafetensorsFile.open(dir), 'CHECKPOINT', 'not a regular file');
  });

  it('names the file in header errors', () => {
    const dir = tmp();
    const path = join(dir, 'broken.safetensors');
    writeFileSync(path, rawFile('not json'));
    expectRose(() => SafetensorsFile.open(path), 'SAFETENSORS', path);
  });

  it('a file truncated while open is a SAFETENSORS error on read, not a short tensor', () => {
    const dir = tmp();
    const path = join(dir, 'shrinks.safetensors');
    writeSafetensors(path, [{ name: 't', dtype: 'F32', shape: [16], data: pattern(64) }]);
    const f = SafetensorsFile.open(path);
    truncateSync(path, 40);
    expectRose(() => f.read('t'), 'SAFETENSORS', /shrinks\.safetensors: the file ends early/);
    f.close();
    f.close(); // idempotent
  });
});

// --- checkpoint folders --------------------------------------------------------------------------

describe('SafetensorsCheckpoint', () => {
  const A: TensorToWrite = { name: 'model.a', dtype: 'F32', shape: [2, 2], data: pattern(16, 1) };
  const B: TensorToWrite = { name: 'model.b', dtype: 'BF16', shape: [3], data: pattern(6, 2) };
  const C: TensorToWrite = { name: 'lm_head.weight', dtype: 'F16', shape: [2, 3], data: pattern(12, 3) };
  const EXTRA: TensorToWrite = { name: 'unlisted', dtype: 'F16', shape: [1], data: pattern(2, 4) };
  const S1 = 'model-00001-of-00002.safetensors';
  const S2 = 'model-00002-of-00002.safetensors';

  /** Two shards and an index; `index` replaces the index contents when given. */
  function sharded(index?: unknown): string {
    const dir = tmp();
    writeSafetensors(join(dir, S1), [A, B]);
    writeSafetensors(join(dir, S2), [C, EXTRA]);
    const weightMap = { [A.name]: S1, [B.name]: S1, [C.name]: S2 };
    const body = index === undefined ? { metadata: { total_size: 34 }, weight_map: weightMap } : index;
    writeFileSync(join(dir, 'model.safetensors.index.json'), typeof body === 'string' ? body : JSON.stringify(body));
    return dir;
  }

  it('reads tensors from both shards', () => {
    const dir = sharded();
    const ckpt = SafetensorsCheckpoint.open(dir);
    expect(ckpt.names()).toEqual([A.name, B.name, C.name]);
    expect(ckpt.info(C.name)).toMatchObject({ name: C.name, dtype: 'F16', shape: [2, 3], file: join(dir, S2) });
    expect(ckpt.info(A.name)?.file).toBe(join(dir, S1));
    for (const t of [A, B, C]) expect(Array.from(ckpt.read(t.name).bytes)).toEqual(Array.from(t.data));
    // A tensor in a shard but not in weight_map is not part of the checkpoint.
    expect(ckpt.info(EXTRA.name)).toBeUndefined();
    expectRose(() => ckpt.read(EXTRA.name), 'CHECKPOINT', 'unlisted');
    ckpt.close();
  });

  it('prefers a single model.safetensors, as transformers does', () => {
    const dir = sharded();
    writeSafetensors(join(dir, 'model.safetensors'), [B]);
    const ckpt = SafetensorsCheckpoint.open(dir);
    expect(ckpt.names()).toEqual([B.name]);
    ckpt.close();
  });

  it('a folder with neither file, or no folder at all, is a CHECKPOINT error', () => {
    const dir = tmp();
    const e = expectRose(
      () => SafetensorsCheckpoint.open(dir),
      'CHECKPOINT',
      /neither model\.safetensors nor model\.safetensors\.index\.json/,
    );
    expect(e.hint).toMatch(/\.bin/);
    expectRose(() => SafetensorsCheckpoint.open(join(dir, 'missing')), 'CHECKPOINT', 'does not exist');
    const file = join(dir, 'file.safetensors');
    writeFileSync(file, encodeSafetensors([]));
    expectRose(() => SafetensorsCheckpoint.open(file), 'CHECKPOINT', 'not a folder');
  });

  it('an index naming a missing shard is a CHECKPOINT error', () => {
    const dir = sharded({ weight_map: { [A.name]: S1, [C.name]: 'model-00003-of-00003.safetensors' } });
    expectRose(() => SafetensorsCheckpoint.open(dir), 'CHECKPOINT', /model-00003-of-00003\.safetensors.*missing/);
  });

  it('an index placing a tensor in a shard that lacks it is a CHECKPOINT error', () => {
    const dir = sharded({ weight_map: { [A.name]: S2 } });
    expectRose(() => SafetensorsCheckpoint.open(dir), 'CHECKPOINT', /"model\.a".*does not hold it/);
  });

  it('shard names that escape the folder are CHECKPOINT errors', () => {
    for (const shard of ['../x', '../model-00001-of-00002.safetensors', '/etc/passwd', 'sub/x.safetensors', 'a\\b', '..', '.', '']) {
      const dir = sharded({ weight_map: { [A.name]: shard } });
      expectRose(() => SafetensorsCheckpoint.open(dir), 'CHECKPOINT', 'not a plain file name');
    }
  });

  it('a malformed index is a SAFETENSORS error naming the index', () => {
    expectRose(() => SafetensorsCheckpoint.open(sharded('{"weight_map": ')), 'SAFETENSORS', /index\.json: not valid JSON/);
    expectRose(() => SafetensorsCheckpoint.open(sharded([])), 'SAFETENSORS', 'weight_map');
    expectRose(() => SafetensorsCheckpoint.open(sharded({ weight_map: [] })), 'SAFETENSORS', 'weight_map');
    expectRose(() => SafetensorsCheckpoint.open(sharded({ weight_map: {} })), 'SAFETENSORS', 'no tensors');
    expectRose(() => SafetensorsCheckpoint.open(sharded({ weight_map: { [A.name]: 1 } })), 'SAFETENSORS', /"model\.a" to a number/);
  });

  it('a corrupt shard is a SAFETENSORS error naming that shard', () => {
    const dir = sharded();
    writeFileSync(join(dir, S2), rawFile('{"x": 1}'));
    expectRose(() => SafetensorsCheckpoint.open(dir), 'SAFETENSORS', S2);
  });

  it.runIf(existsSync('/proc/self/fd'))('closes the shards it opened when a later one fails', () => {
    const dir = sharded();
    writeFileSync(join(dir, S2), rawFile('{"x": 1}')); // S1 opens fine, S2 fails
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) expectRose(() => SafetensorsCheckpoint.open(dir), 'SAFETENSORS');
    expect(fds()).toBe(before);
  });
});
