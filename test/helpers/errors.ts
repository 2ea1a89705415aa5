/** The RoseError a call throws, or a promise rejects with; either fails the test on anything else. */
import { expect } from 'vitest';
import { RoseError } from '../../src/errors.ts';

/** The RoseError that f throws; fails the test if f returns or throws anything else. */
export function roseError(f: () => unknown): RoseError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RoseError);
    return e as RoseError;
  }
  throw new Error('expected a RoseError');
}

/** The RoseError that p (or the promise f returns) rejects with; fails the test if it resolves or rejects with anything else. */
export async function roseRejection(p: Promise<unknown> | (() => Promise<unknown>)): Promise<RoseError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(RoseError);
    return e as RoseError;
  }
  throw new Error('expected a RoseError');
}
