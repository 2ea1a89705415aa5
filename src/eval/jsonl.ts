/**
 * The files of `rose eval`: the prompts JSONL it reads, and the results JSONL it writes crash-safely.
 *
 * Crash safety, in two parts (the runner adds the third, skipping ids already written):
 *   1. Each result is ONE line written by ONE `write(2)` to a file opened O_APPEND, then fsync'd
 *      (see EvalWriter). A line is on disk whole or, at worst, as a torn tail of the file.
 *   2. On start, readEvalOutput() keeps every complete valid line and truncates a torn tail back to the
 *      end of the last complete valid line (it never drops a complete line, and refuses to touch a
 *      file whose damage is anywhere but the tail).
 *
 * Output line: {id, prompt, plain: {text, tokens, seconds, refused}, rose: {…}, ...extra, input}
 * where `extra` are run-wide fields the caller chooses (alpha, model, max new tokens, …) and `input`
 * holds the prompt line's other fields, carried through untouched.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, truncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { RoseError } from '../errors.ts';
import { isObject } from '../json.ts';

export const defaultLog = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

// ───────────────────────────────────────── input ─────────────────────────────────────────

export interface PromptRow {
  id: string | number;
  prompt: string;
  /** 1-based line of the prompts file. */
  line: number;
  /** The line's other fields, carried into the output under `input`. */
  input: Record<string, unknown>;
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new RoseError('INPUT', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
const validId = (v: unknown): v is string | number => (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v));
/** Ids are compared as strings: 7 and "7" are the same prompt. */
export const idKey = (id: string | number): string => String(id);

/**
 * Reads and validates a prompts file: one JSON object per line with a unique `id` (non-empty string
 * or number) and a string `prompt`. Blank lines are ignored. Every problem is RoseError('INPUT')
 * naming `file:line`.
 */
export function readPrompts(path: string): PromptRow[] {
  const lines = readText(path, 'prompts file').split('\n');
  const rows: PromptRow[] = [];
  const seen = new Map<string, number>();
  const hint = 'each line must be a JSON object like {"id": 1, "prompt": "…"}';
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    const at = `${path}:${line}`;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch (e) {
      throw new RoseError('INPUT', `${at}: invalid JSON (${(e as Error).message})`, hint);
    }
    if (!isObject(v)) throw new RoseError('INPUT', `${at}: expected a JSON object, got ${kindOf(v)}`, hint);
    const { id, prompt, ...input } = v;
    if (id === undefined) throw new RoseError('INPUT', `${at}: missing "id"`, hint);
    if (!validId(id)) throw new RoseError('INPUT', `${at}: "id" must be a non-empty string or a number, got ${JSON.stringify(id)}`, hint);
    if (typeof prompt !== 'string')
      throw new RoseError('INPUT', `${at}: "prompt" must be a string, got ${prompt === undefined ? 'nothing' : kindOf(prompt)}`, hint);
    const first = seen.get(idKey(id));
    if (first !== undefined)
      throw new RoseError(
        'INPUT',
        `${at}: duplicate id ${JSON.stringify(id)} (first on line ${first})`,
        'ids must be unique: results are matched to prompts by id',
      );
    seen.set(idKey(id), line);
    rows.push({ id, prompt, line, input });
  });
  if (rows.length === 0) throw new RoseError('INPUT', `prompts file ${path} has no prompts`, hint);
  return rows;
}

// ───────────────────────────────────────── output ─────────────────────────────────────────

export interface DecodingRecord {
  text: string;
  tokens: number;
  seconds: number;
  /** The refusal verdict of the phrase list in use when the line was written. */
  refused: boolean;
}

export interface EvalLine {
  id: string | number;
  prompt: string;
  plain: DecodingRecord;
  rose: DecodingRecord;
  input: Record<string, unknown>;
  /** Run-wide fields (`extra`): alpha, model, … */
  [field: string]: unknown;
}

/** Keys of an output line the runner owns; `extra` may not use them. */
export const RESERVED_FIELDS: readonly string[] = Object.freeze(['id', 'prompt', 'plain', 'rose', 'input']);

const isRecord = (v: unknown): v is DecodingRecord =>
  isObject(v) &&
  typeof v.text === 'string' &&
  typeof v.tokens === 'number' &&
  typeof v.seconds === 'number' &&
  typeof v.refused === 'boolean';

const isEvalLine = (v: unknown): v is EvalLine =>
  isObject(v) && validId(v.id) && typeof v.prompt === 'string' && isRecord(v.plain) && isRecord(v.rose) && isObject(v.input);

export interface EvalOutputFile {
  /** Every complete valid line, in file order. */
  lines: EvalLine[];
  /** 1-based line number of each entry of `lines`. */
  lineNumbers: number[];
  /** Bytes truncated from a torn tail (0 when none). */
  droppedBytes: number;
}

/** A short, escaped excerpt of a line for messages. */
const preview = (s: string): string => JSON.stringify(s.length > 80 ? `${s.slice(0, 60)}…${s.slice(-15)}` : s);

/**
 * Reads an eval output file (a missing file is an empty one), repairing a torn tail.
 *
 * A torn tail is what a write cut short leaves at the END of the file: a last piece with no trailing
 * newline, or a last newline-terminated line that is not valid JSON (a power loss can leave the file
 * longer than its data, the gap read back as NUL bytes). It is truncated back to the end of the last
 * complete valid line, and what was dropped is logged. A complete line that is valid JSON but not an
 * eval line, or an invalid line anywhere but the very end, is not a torn write: the file was edited or
 * is not an eval output (say, the prompts file passed as --out), so this throws RoseError('INPUT')
 * and leaves the file untouched. Duplicate ids throw too (they would be counted twice).
 */
export function readEvalOutput(
  path: string,
  log: (message: string) => void = defaultLog,
  opts: {
    /** false: a torn tail is an error and the file is left untouched (rose eval --merge reads others' outputs). */ repair?: boolean;
  } = {},
): EvalOutputFile {
  if (!existsSync(path)) return { lines: [], lineNumbers: [], droppedBytes: 0 };
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new RoseError('INPUT', `cannot read eval output ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lines: EvalLine[] = [];
  const lineNumbers: number[] = [];
  const firstLine = new Map<string, number>();
  const hint = 'the file was edited or is not a `rose eval` output: fix or delete that line, or write to a new output file';
  let keepBytes = 0; // end of the last complete valid line (or of trailing blank lines after it)
  let start = 0;
  for (let line = 1; start < buf.length; line++) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl === -1 ? buf.length : nl + 1;
    const text = buf.toString('utf8', start, nl === -1 ? buf.length : nl);
    const isLast = end === buf.length;
    const at = `${path}:${line}`;
    if (text.trim() === '' && nl !== -1) {
      // a blank line: harmless, kept as is
      if (keepBytes === start) keepBytes = end;
      start = end;
      continue;
    }
    let v: unknown;
    let parsed = true;
    try {
      v = JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (nl === -1 || (!parsed && isLast)) {
      // The torn tail: a write cut short. A piece that is whole JSON but not an eval line is not ours.
      if (parsed && !isEvalLine(v)) throw new RoseError('INPUT', `${at}: not an eval output line (${preview(text)})`, hint);
      if (opts.repair === false)
        throw new RoseError(
          'INPUT',
          `${at}: a torn last line (a run cut off mid-write)`,
          'finish that run first: the same rose eval command resumes it and repairs the line',
        );
      const dropped = buf.length - keepBytes;
      log(
        `rose eval: ${path}: dropped a torn last line (line ${line}, ${dropped} byte(s): ${preview(buf.toString('utf8', keepBytes))}), ` +
          'left by a run that was cut off mid-write; its prompt will be run again',
      );
      truncateSync(path, keepBytes);
      syncFile(path);
      return { lines, lineNumbers, droppedBytes: dropped };
    }
    if (!parsed) throw new RoseError('INPUT', `${at}: invalid JSON in the middle of the file (${preview(text)})`, hint);
    if (!isEvalLine(v)) throw new RoseError('INPUT', `${at}: not an eval output line (${preview(text)})`, hint);
    const first = firstLine.get(idKey(v.id));
    if (first !== undefined) throw new RoseError('INPUT', `${at}: duplicate id ${JSON.stringify(v.id)} (first on line ${first})`, hint);
    firstLine.set(idKey(v.id), line);
    lines.push(v);
    lineNumbers.push(line);
    keepBytes = end;
    start = end;
  }
  return { lines, lineNumbers, droppedBytes: 0 };
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync a directory so a newly created file's name survives a power loss (POSIX; a no-op where unsupported). */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Windows cannot open a directory; NTFS journals the name itself.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Appends whole lines durably.
 *
 * Why one appended write + fsync cannot leave a torn line, except on power loss:
 *  - The file is opened O_APPEND, so the kernel moves to end-of-file and writes in one step: a line is
 *    never written over another, nor interleaved with another write.
 *  - The whole line, newline included, goes to ONE write(2) (one `fs.writeSync` of one Buffer). JS
 *    runs on one thread, so nothing in this process can interrupt it half-way: an exception, a
 *    SIGINT handler or an abort all happen before or after the call, never inside it.
 *  - When write(2) returns, the bytes are in the kernel's page cache, which belongs to the kernel, not
 *    to this process: a SIGKILL, a crash or the OOM killer right after it loses nothing; the next
 *    reader (our next run) sees the line whole. fsync then pushes it to the disk before we count the
 *    prompt as done, so an acknowledged line also survives a power loss.
 *  - What remains is the one write in flight when the machine loses power (or the kernel crashes):
 *    the file can come back with part of that line, or with its length extended over a gap that
 *    reads as NUL bytes. Only the LAST line can be affected, because every earlier one was fsync'd
 *    before it was written. (Rarer cousins end the same way: a disk-full short write, which we undo
 *    at once with ftruncate; Linux honouring a SIGKILL between the pages of a write that straddles a
 *    page boundary.) readEvalOutput() handles all of them on the next start: a torn tail is
 *    truncated back to the last complete valid line, whose prompt then simply runs again.
 */
export class EvalWriter {
  private fd: number;
  private size: number;

  constructor(readonly path: string) {
    const created = !existsSync(path);
    try {
      this.fd = openSync(path, 'a'); // O_WRONLY | O_CREAT | O_APPEND
    } catch (e) {
      throw new RoseError(
        'INPUT',
        `cannot open eval output ${path} for appending: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      );
    }
    this.size = fstatSync(this.fd).size;
    if (created) syncDir(dirname(path));
  }

  append(line: EvalLine): void {
    const bytes = Buffer.from(`${JSON.stringify(line)}\n`, 'utf8'); // JSON escapes \n in strings: one line
    const written = writeSync(this.fd, bytes);
    if (written !== bytes.length) {
      ftruncateSync(this.fd, this.size); // a short write (disk full): take the piece back
      fsyncSync(this.fd);
      throw new RoseError(
        'LIMIT',
        `short write to ${this.path}: ${written} of ${bytes.length} bytes (disk full?)`,
        'free some space and run the same command again: it resumes',
      );
    }
    fsyncSync(this.fd);
    this.size += written;
  }

  close(): void {
    closeSync(this.fd);
  }
}
