/**
 * `rose eval --merge`: the outputs of several runs (the n shards of one evaluation, say) combined into
 * one, with the checks a resumed run makes: every file whole (a torn last line means a run is not
 * finished), every id once across all files, the same run-wide fields (alpha, model, …) everywhere,
 * and, given the prompts file, the same prompt for each id and no prompt missing.
 *
 * The merged lines keep their bytes (each line is re-serialised from its parsed JSON, which gives the
 * bytes the writer wrote) and come in the prompts file's order when it is given, else file by file; so
 * the shards of a run merge into the very file one unsharded run writes.
 */
import { existsSync } from 'node:fs';
import { RoseError } from '../errors.ts';
import { writeOutputFile } from '../outputFile.ts';
import { defaultLog, idKey, readEvalOutput, readPrompts, RESERVED_FIELDS, type EvalLine } from './jsonl.ts';

export interface MergeOptions {
  files: readonly string[];
  /** The merged output: a new file (an existing one is refused, so nothing is overwritten). */
  output: string;
  /** The prompts file: orders the lines and checks that every prompt is there, with its prompt. */
  input?: string;
  log?: (message: string) => void;
}

const runWide = (l: EvalLine): [string, string][] =>
  Object.keys(l)
    .filter((k) => !RESERVED_FIELDS.includes(k))
    .sort()
    .map((k) => [k, JSON.stringify(l[k])]);

/** Merges the files into `output` and returns the merged lines. Every problem is RoseError('INPUT') naming file:line. */
export function mergeEvalOutputs(o: MergeOptions): EvalLine[] {
  const log = o.log ?? defaultLog;
  if (o.files.length === 0) throw new RoseError('INPUT', 'nothing to merge', 'give the outputs to combine: --merge a.jsonl b.jsonl …');
  if (existsSync(o.output))
    throw new RoseError('INPUT', `${o.output} already exists`, 'merge into a new file, so that no result is overwritten');
  const hint = 'merge the outputs of ONE evaluation (the same prompts and options), each finished';
  const lines: EvalLine[] = [];
  const where = new Map<string, string>(); // id → file:line
  let reference: { at: string; fields: [string, string][] } | undefined;
  for (const file of o.files) {
    if (file === o.output)
      throw new RoseError('INPUT', `--out ${o.output} is also one of the files to merge`, 'write the merge to a new file');
    const read = readEvalOutput(file, log, { repair: false });
    if (read.lines.length === 0) log(`rose eval: ${file} has no results`);
    read.lines.forEach((l, i) => {
      const at = `${file}:${read.lineNumbers[i]}`;
      const first = where.get(idKey(l.id));
      if (first !== undefined) throw new RoseError('INPUT', `${at}: id ${JSON.stringify(l.id)} is also in ${first}`, hint);
      where.set(idKey(l.id), at);
      const fields = runWide(l);
      if (!reference) reference = { at, fields };
      else if (JSON.stringify(fields) !== JSON.stringify(reference.fields)) {
        const mine = new Map(fields);
        const theirs = new Map(reference.fields);
        const key = [...new Set([...mine.keys(), ...theirs.keys()])].find((k) => mine.get(k) !== theirs.get(k))!;
        throw new RoseError(
          'INPUT',
          `${at}: made with ${key}=${mine.get(key) ?? 'nothing'}, but ${reference.at} with ${key}=${theirs.get(key) ?? 'nothing'}`,
          hint,
        );
      }
      lines.push(l);
    });
  }

  let merged = lines;
  if (o.input) {
    const rows = readPrompts(o.input);
    const byId = new Map(lines.map((l) => [idKey(l.id), l]));
    const missing = rows.filter((r) => !byId.has(idKey(r.id)));
    if (missing.length > 0) {
      const some = missing.slice(0, 5).map((r) => JSON.stringify(r.id));
      throw new RoseError(
        'INPUT',
        `${missing.length} of the ${rows.length} prompts of ${o.input} have no result in these files (ids ${some.join(', ')}${missing.length > 5 ? ', …' : ''})`,
        'finish every shard first (each resumes when run again), or merge without --input',
      );
    }
    const inInput = new Set(rows.map((r) => idKey(r.id)));
    for (const r of rows) {
      const l = byId.get(idKey(r.id))!;
      if (l.prompt !== r.prompt)
        throw new RoseError(
          'INPUT',
          `${where.get(idKey(r.id))}: id ${JSON.stringify(r.id)} was run with a different prompt than ${o.input}:${r.line} has`,
          hint,
        );
    }
    const extra = lines.filter((l) => !inInput.has(idKey(l.id)));
    if (extra.length > 0) log(`rose eval: ${extra.length} merged line(s) have ids that are not in ${o.input}; they come last`);
    merged = [...rows.map((r) => byId.get(idKey(r.id))!), ...extra];
  }

  writeOutputFile(
    o.output,
    merged.map((l) => `${JSON.stringify(l)}\n`),
    'merged eval output',
  );
  return merged;
}
