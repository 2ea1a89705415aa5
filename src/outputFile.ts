/**
 * Writing an output file the way a user expects from `cp`, `git` or `curl -o`, whatever the path is.
 *
 *   - a regular file, or a path that does not exist yet: written to a temp file beside it, fsync'd and
 *     renamed into place, so a crash or a full disk never leaves a torn file. Through a symlink, the
 *     file it points to is replaced and the link stays a link; an existing file keeps its mode.
 *   - a character device (/dev/null, a terminal) or a FIFO (a named pipe, `>(…)`): written straight
 *     through, as `cat > path` would. A rename there would REPLACE the device node with a regular file:
 *     run as root, `rose logits --out /dev/null` once did exactly that, and broke every program that
 *     writes to /dev/null afterwards.
 *   - `-`: standard output.
 *   - a directory, a block device or a socket: refused, with a RoseError('INPUT') saying why.
 */
import { chmodSync, closeSync, fsyncSync, openSync, realpathSync, renameSync, type Stats, statSync, unlinkSync, writeSync } from 'node:fs';
import { RoseError } from './errors.ts';

/** What writeOutputFile did: 'stdout', 'stream' (a device or FIFO, written through) or 'file' (atomic rename). */
export type OutputKind = 'stdout' | 'stream' | 'file';

const encoder = new TextEncoder();
const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength; ) {
    try {
      done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 24));
    } catch (e) {
      // stdout may be a non-blocking pipe whose reader is slower than us: wait for room, as `cat` would.
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      sleepMs(1);
    }
  }
}

const asBytes = (part: Uint8Array | string): Uint8Array => (typeof part === 'string' ? encoder.encode(part) : part);

/** Where `path` leads, or null when nothing is there yet. */
function statOrNull(path: string): Stats | null {
  try {
    return statSync(path); // follows symlinks: what matters is what a write would reach
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Writes `parts` one after the other to `path` (see the top of this file for what each kind of path
 * gets). `what` names the output in errors ("logits file", "trace"). Returns what kind of target it was.
 */
export function writeOutputFile(path: string, parts: readonly (Uint8Array | string)[], what = 'output'): OutputKind {
  const fail = (why: string, hint = 'check that the folder exists, is writable and has free space') =>
    new RoseError('INPUT', `cannot write the ${what} ${path}: ${why}`, hint);
  if (path === '-') {
    for (const p of parts) writeAll(1, asBytes(p));
    return 'stdout';
  }
  let st: Stats | null;
  try {
    st = statOrNull(path);
  } catch (e) {
    throw fail((e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  if (st?.isDirectory()) throw fail('it is a directory', 'give a file name inside it');
  if (st && (st.isCharacterDevice() || st.isFIFO())) {
    let fd: number | undefined;
    try {
      fd = openSync(path, 'w'); // a FIFO blocks here until a reader opens it, as with `cat > fifo`
      for (const p of parts) writeAll(fd, asBytes(p));
    } catch (e) {
      throw fail((e as NodeJS.ErrnoException).code ?? (e as Error).message);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    return 'stream';
  }
  if (st && !st.isFile())
    throw fail(
      `it is ${st.isBlockDevice() ? 'a block device' : 'a socket'}`,
      'write to a regular file, a character device, a FIFO or - (stdout)',
    );

  const target = st ? realpathSync(path) : path; // through a symlink: replace the file, keep the link
  const tmp = `${target}.tmp-${process.pid}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    for (const p of parts) writeAll(fd, asBytes(p));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    if (st) chmodSync(tmp, st.mode & 0o7777);
    renameSync(tmp, target);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to clean up
    }
    throw fail((e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  return 'file';
}
