/**
 * Output paths behave as with `cat > path`: a regular file is replaced atomically, a character device
 * or a FIFO is written through and stays what it is, `-` is stdout. (Run as root, the old temp+rename
 * writer replaced a /dev/null given as --out with a regular file.) The device nodes here are made with
 * mknod in a temp dir: no test ever points at a real device path.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeOutputFile } from '../../src/outputFile.ts';
import { SafetensorsFile } from '../../src/model/safetensors.ts';
import { captureOutput, rose } from '../helpers/cli.ts';
import { roseError } from '../helpers/errors.ts';
import { fixturesDir } from '../helpers/fixtures.ts';

const io = captureOutput();
const tmp = () => mkdtempSync(join(tmpdir(), 'rose-out-'));

/** A character device like /dev/null (1, 3), made in a temp dir; undefined where mknod is not allowed. */
function nullDevice(dir: string): string | undefined {
  const path = join(dir, 'null');
  return spawnSync('mknod', [path, 'c', '1', '3']).status === 0 ? path : undefined;
}
const canMknod = nullDevice(tmp()) !== undefined;
if (!canMknod) process.stderr.write('[outputFile] mknod is not permitted here (not root?): the character-device cases are skipped\n');

describe('writeOutputFile', () => {
  it('a new path and an existing regular file are written whole, through a temp file renamed into place', () => {
    const dir = tmp();
    const path = join(dir, 'out.bin');
    expect(writeOutputFile(path, ['ab', new Uint8Array([0x63])])).toBe('file');
    expect(readFileSync(path, 'utf8')).toBe('abc');
    chmodSync(path, 0o640);
    const inode = statSync(path).ino;
    expect(writeOutputFile(path, ['xyz'])).toBe('file');
    expect(readFileSync(path, 'utf8')).toBe('xyz');
    expect(statSync(path).ino).not.toBe(inode); // replaced by rename, never truncated in place
    expect(statSync(path).mode & 0o777).toBe(0o640); // and it keeps its mode
  });

  it('through a symlink the target file is replaced and the link stays a link', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'real.json'), 'old');
    symlinkSync('real.json', join(dir, 'link.json'));
    writeOutputFile(join(dir, 'link.json'), ['new']);
    expect(lstatSync(join(dir, 'link.json')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'link.json'))).toBe('real.json');
    expect(readFileSync(join(dir, 'real.json'), 'utf8')).toBe('new');
  });

  it.skipIf(!canMknod)('a character device is written through and stays a character device', () => {
    const dev = nullDevice(tmp())!;
    expect(writeOutputFile(dev, ['x'.repeat(100_000)])).toBe('stream');
    const st = statSync(dev);
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(statSync(dev).rdev);
  });

  it('a FIFO is written through to its reader and stays a FIFO', async () => {
    const dir = tmp();
    const fifo = join(dir, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const reader = spawn('cat', [fifo]);
    let got = '';
    reader.stdout.on('data', (d: Buffer) => (got += d));
    const closed = new Promise((r) => reader.on('close', r));
    try {
      expect(writeOutputFile(fifo, ['through ', 'the pipe'])).toBe('stream');
      await closed;
      expect(got).toBe('through the pipe');
      expect(statSync(fifo).isFIFO()).toBe(true);
    } finally {
      if (reader.exitCode === null) reader.kill(); // a writer that replaced the FIFO leaves cat waiting
    }
  });

  it('a directory is refused with a clear error', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'sub'));
    const e = roseError(() => writeOutputFile(join(dir, 'sub'), ['x'], 'trace'));
    expect(e.code).toBe('INPUT');
    expect(e.message).toMatch(/cannot write the trace .*sub: it is a directory/);
  });
});

describe('rose logits --out', () => {
  const args = ['logits', '--model', join(fixturesDir, 'tiny-mha-f32'), '--ids', '1,2,3', '--backend', 'cpu', '--out'];

  it.skipIf(!canMknod)('a character device (mknod c 1 3, like /dev/null) is written through, not replaced', async () => {
    const dev = nullDevice(tmp())!;
    expect(await rose(...args, dev)).toBe(0);
    expect(statSync(dev).isCharacterDevice()).toBe(true);
    expect(io.stdout).toMatch(/^rose logits: 1 row\(s\) of 3 tokens/);
  });

  it('- writes the safetensors file to stdout and the summary line to stderr', () => {
    const bin = join(import.meta.dirname, '..', '..', 'bin', 'rose.mjs');
    const r = spawnSync(process.execPath, [bin, ...args, '-'], { maxBuffer: 1 << 24 });
    expect(r.status, r.stderr.toString()).toBe(0);
    const copy = join(tmp(), 'stdout.safetensors');
    writeFileSync(copy, r.stdout);
    const f = SafetensorsFile.open(copy);
    expect(f.read('logits.0').shape).toEqual([3, 512]);
    f.close();
    expect(r.stderr.toString()).toMatch(/^rose logits: 1 row\(s\) of 3 tokens × vocab 512 → stdout in /);
  });

  it('a regular file holds the logits; the summary line says where', async () => {
    const out = join(tmp(), 'l.safetensors');
    expect(await rose(...args, out)).toBe(0);
    const f = SafetensorsFile.open(out);
    expect(f.names()).toEqual(['logits.0']);
    f.close();
    expect(io.stdout).toContain(`→ ${out} in`);
  });
});
