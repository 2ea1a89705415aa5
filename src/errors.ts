/**
 * Every failure a user can cause (a bad file, a wrong shape, an option out of range) is a RoseError:
 * a typed error whose message says what is wrong and whose `hint` says what to do about it.
 * The CLI prints `error[<code>]: <message>` and the hint, never a stack trace (unless --debug).
 */
export type RoseErrorCode =
  | 'SAFETENSORS' // a .safetensors file or its shard index is malformed
  | 'DTYPE' // a tensor's dtype is not one we compute with (F32, F16, BF16)
  | 'CONFIG' // config.json is missing, malformed, or contradicts itself
  | 'CHECKPOINT' // a tensor is missing, or its shape disagrees with config.json
  | 'USAGE' // the command line itself is wrong: an unknown or malformed option, options that conflict (exit 2)
  | 'INPUT' // token ids, lengths or options the user gave are invalid
  | 'LIMIT' // a hard limit (context length, device memory) would be exceeded
  | 'BACKEND' // the compute backend failed or is unavailable
  | 'NUMERIC'; // NaN or Inf appeared where a number was expected

export class RoseError extends Error {
  constructor(
    readonly code: RoseErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = `RoseError[${code}]`;
  }
}

export const isRoseError = (e: unknown): e is RoseError => e instanceof RoseError;
