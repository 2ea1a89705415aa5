/**
 * `rose diff REF OTHER`: does another backend's dump match the reference, and if not, where does it
 * first leave it? A compact table per tensor, the positions around the first divergence, and one
 * verdict line. Exit 0: all within the tolerance; 1: a divergence; 2: unusable input (the caller maps
 * every error of this command to 2, so that 1 always means "the numbers differ").
 */
import { type DiffReport, type PositionDiff, type TensorDiff, diffDumps } from '../oracle/diff.ts';
import { type Dump, openDump } from '../oracle/dumps.ts';
import { EXPECTED_TOLERANCE, MEASURED_SCALE, type Precision } from '../oracle/tolerance.ts';

export interface DiffCliOptions {
  tol?: number;
  expect?: Precision;
  json?: boolean;
  shape?: number[];
  tensor?: string;
}

export interface DiffOutcome {
  exitCode: 0 | 1;
  text: string;
}

export function diffCommand(refPath: string, otherPath: string, opts: DiffCliOptions): DiffOutcome {
  const precision: Precision = opts.expect ?? 'f32';
  const tolerance = opts.tol ?? EXPECTED_TOLERANCE[precision].tolerance;
  const source =
    opts.tol !== undefined
      ? '--tol'
      : `${opts.expect ? `--expect ${precision}` : `default, as --expect f32`}: ${EXPECTED_TOLERANCE[precision].why}`;
  const ref = openDump(refPath, 'REF', opts.shape);
  let other: Dump | undefined;
  try {
    other = openDump(otherPath, 'OTHER', opts.shape);
    const report = diffDumps(ref, other, { tolerance, tensor: opts.tensor });
    const rows = parseRows(ref.metadata.rows);
    const text = opts.json ? JSON.stringify(toJson(report, ref, other, source, rows)) : formatReport(report, ref, other, source, rows);
    return { exitCode: report.first ? 1 : 0, text };
  } finally {
    other?.close();
    ref.close();
  }
}

/** rose-ts files carry their token rows (metadata "rows"); the per-position table shows the tokens then. */
function parseRows(text: string | undefined): number[][] | undefined {
  try {
    const rows = text === undefined ? undefined : JSON.parse(text);
    return Array.isArray(rows) && rows.every((r) => Array.isArray(r) && r.every(Number.isInteger)) ? rows : undefined;
  } catch {
    return undefined; // a foreign file's "rows" means something else: show no tokens
  }
}

/** 1.0e-4 style, the verdict's format; 0 stays 0. */
export const sci = (x: number): string => (x === 0 ? '0' : x.toExponential(1));

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd(),
  );
}

/** "row 0, layer 2" / "logits": where a tensor sits, for the verdict. */
const where = (t: TensorDiff): string => (t.stage.row === undefined ? t.stage.label : `row ${t.stage.row}, ${t.stage.label}`);

/** What a tensor is, in words, for the heading of its per-position table. */
function describe(t: TensorDiff): string {
  const s = t.stage;
  if (s.layer === 0) return `${t.name}: the embeddings, transformers' hidden_states[0]`;
  if (s.layer !== undefined)
    return `${t.name}: the output of layer ${s.layer}, transformers' model.layers[${s.layer - 1}] and hidden_states[${s.layer}]`;
  if (s.label === 'final norm') return `${t.name}: the final RMSNorm's output, transformers' last hidden_states entry`;
  return t.name === t.otherName ? t.name : `${t.name} vs OTHER's ${t.otherName}`;
}

function formatReport(r: DiffReport, ref: Dump, other: Dump, source: string, rows: number[][] | undefined): string {
  const out: string[] = [];
  // What made each file, when it says (rose-ts writes producer and backend into the metadata).
  const origin = (d: Dump) => {
    const { producer, backend } = d.metadata;
    return `${d.tensors.size} tensor${d.tensors.size === 1 ? '' : 's'}${producer ? `; ${producer}${backend ? ` on ${backend}` : ''}` : ''}`;
  };
  out.push(`REF    ${ref.path} (${origin(ref)})`);
  out.push(`OTHER  ${other.path} (${origin(other)})`);
  out.push(`tolerance ${sci(r.tolerance)} on max |Δ| (${source})`);
  out.push('');

  const anyLogits = r.tensors.some((t) => t.stage.kind === 'logits');
  const head = ['tensor', 'shape', 'max |ref|', 'max |Δ|', 'at pos', 'max rel', ...(anyLogits ? ['argmax', 'top-5', 'max KL'] : []), ''];
  const lines = r.tensors.map((t) => {
    const logits = t.argmaxAgree === undefined ? ['', '', ''] : [`${t.argmaxAgree}/${t.positions.length}`, `${t.top5Min}/5`, sci(t.klMax!)];
    return [
      t.name === t.otherName ? t.name : `${t.name} ↔ ${t.otherName}`,
      `[${t.shape.join(', ')}]`,
      sci(t.maxRef),
      sci(t.maxAbs),
      t.maxAbs === 0 ? '-' : String(t.maxAbsPosition),
      sci(t.maxRel),
      ...(anyLogits ? logits : []),
      t.firstOver < 0 ? 'ok' : `> tol from position ${t.firstOver}`,
    ];
  });
  out.push(...table([head, ...lines]));
  if (r.onlyInRef.length) out.push(`not in OTHER, not compared: ${r.onlyInRef.join(', ')}`);
  if (r.onlyInOther.length) out.push(`not in REF, not compared: ${r.onlyInOther.join(', ')}`);
  const large = r.tensors.filter((t) => t.maxRef > MEASURED_SCALE);
  if (large.length && source !== '--tol') {
    out.push(
      `note: ${large.map((t) => t.name).join(', ')} reach |ref| ${sci(Math.max(...large.map((t) => t.maxRef)))}, above the ${MEASURED_SCALE} where the noise floors behind --expect were measured; float error grows with magnitude, so derive a --tol for this model (README: "Checking another backend")`,
    );
  }

  if (r.first) {
    const t = r.first.tensor;
    out.push('');
    out.push(`${where(t)} (${describe(t)}), around the first divergence:`);
    out.push(...positionTable(t, r.first.position, r.tolerance, t.stage.row === undefined ? undefined : rows?.[t.stage.row]));
    out.push(
      `first divergence: ${where(t)}, position ${r.first.position}: max |Δ| ${sci(t.positions[r.first.position].maxAbs)} > ${sci(r.tolerance)}`,
    );
  } else {
    const worst = r.tensors.reduce((w, t) => (t.maxAbs > w.maxAbs ? t : w), r.tensors[0]);
    const at = worst.maxAbs === 0 ? 'the files are equal' : `largest in ${worst.name}, position ${worst.maxAbsPosition}`;
    out.push(`all within tolerance: max |Δ| ${sci(worst.maxAbs)} ≤ ${sci(r.tolerance)} over ${r.tensors.length} tensor(s) (${at})`);
  }
  return out.join('\n');
}

/** Two positions before the first divergence and up to five from it, with the row's tokens when known. */
function positionTable(t: TensorDiff, first: number, tolerance: number, tokens: number[] | undefined): string[] {
  const from = Math.max(0, first - 2);
  const to = Math.min(t.positions.length, first + 6);
  const logits = t.argmaxAgree !== undefined;
  const head = [
    'position',
    ...(tokens ? ['token'] : []),
    'max |Δ|',
    'at feature',
    'max rel',
    ...(logits ? ['argmax ref/other', 'top-5', 'KL'] : []),
    '',
  ];
  const body = t.positions
    .slice(from, to)
    .map((q: PositionDiff) => [
      String(q.position),
      ...(tokens ? [String(tokens[q.position] ?? '?')] : []),
      sci(q.maxAbs),
      q.maxAbs === 0 ? '-' : String(q.maxAbsAt),
      sci(q.rel),
      ...(logits ? [`${q.argmaxRef}/${q.argmaxOther}`, `${q.top5}/5`, sci(q.kl!)] : []),
      q.maxAbs > tolerance ? '> tol' : '',
    ]);
  const lines = table([head, ...body]).map((l) => `  ${l}`);
  if (from > 0) lines.splice(1, 0, `  … positions 0..${from - 1} within tolerance`);
  if (to < t.positions.length) lines.push(`  … ${t.positions.length - to} more position(s) (--json lists every position)`);
  return lines;
}

function toJson(r: DiffReport, ref: Dump, other: Dump, source: string, rows: number[][] | undefined): object {
  const first = r.first && {
    tensor: r.first.tensor.name,
    row: r.first.tensor.stage.row ?? null,
    stage: r.first.tensor.stage.label,
    layer: r.first.tensor.stage.layer ?? null,
    position: r.first.position,
    token: r.first.tensor.stage.row === undefined ? null : (rows?.[r.first.tensor.stage.row]?.[r.first.position] ?? null),
    maxAbs: r.first.tensor.positions[r.first.position].maxAbs,
  };
  return {
    ref: { path: ref.path, metadata: ref.metadata },
    other: { path: other.path, metadata: other.metadata },
    tolerance: r.tolerance,
    toleranceSource: source,
    verdict: r.first ? 'diverged' : 'within tolerance',
    first: first ?? null,
    tensors: r.tensors.map((t) => ({
      name: t.name,
      otherName: t.otherName,
      kind: t.stage.kind,
      row: t.stage.row ?? null,
      stage: t.stage.label,
      layer: t.stage.layer ?? null,
      shape: t.shape,
      maxRef: t.maxRef,
      maxAbs: t.maxAbs,
      maxAbsPosition: t.maxAbsPosition,
      maxRel: t.maxRel,
      argmaxAgree: t.argmaxAgree ?? null,
      top5Min: t.top5Min ?? null,
      klMax: t.klMax ?? null,
      firstOver: t.firstOver < 0 ? null : t.firstOver,
      positions: t.positions,
    })),
    onlyInRef: r.onlyInRef,
    onlyInOther: r.onlyInOther,
  };
}
