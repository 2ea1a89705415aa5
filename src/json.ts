/**
 * Checks on values parsed from JSON (config.json, the tokenizer files, a safetensors header or shard
 * index, the eval's JSONL lines), shared by every reader so that each says the same about a bad value.
 */

/** A JSON object: not null, not an array. */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A token id: a non-negative safe integer. */
export const isTokenId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A value from a file, shown in a message: bounded to 80 characters, and `undefined` spelled out. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
