/** The live two-column layout of `rose generate --compare`: word wrapping of a growing text, row by row. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SideBySide, StreamWrapper, wrapText } from '../../src/cli/columns.ts';

/** Everything a wrapper has handed out after the given pushes and finish(). */
function streamed(pieces: readonly string[], width: number): string[] {
  const w = new StreamWrapper(width);
  const lines: string[] = [];
  for (const p of pieces) {
    w.push(p);
    for (let l = w.take(); l !== undefined; l = w.take()) lines.push(l);
  }
  w.finish();
  for (let l = w.take(); l !== undefined; l = w.take()) lines.push(l);
  return lines;
}

describe('StreamWrapper', () => {
  it('breaks at spaces, never inside a word or a number that fits', () => {
    expect(wrapText('plain greedy (17.2 tok/s) and ROSE', 14)).toEqual(['plain greedy', '(17.2 tok/s)', 'and ROSE']);
    expect(wrapText('a\n\nb', 10)).toEqual(['a', '', 'b']); // blank lines stay
    expect(wrapText('x'.repeat(12), 5)).toEqual(['xxxxx', 'xxxxx', 'xx']); // only a word longer than the column is split
  });

  it('property: text streamed in any pieces gives the lines of wrapping it whole, each line as soon as it is final', () => {
    const word = fc.stringMatching(/^[a-z.,'!()0-9]{1,12}$/);
    const text = fc
      .array(fc.tuple(word, fc.constantFrom(' ', ' ', ' ', '\n', '  ')), { minLength: 1, maxLength: 20 })
      .map((ws) => ws.map(([w, s]) => w + s).join(''));
    fc.assert(
      fc.property(
        text,
        fc.integer({ min: 4, max: 30 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 10 }),
        (t, width, cuts) => {
          const pieces: string[] = [];
          for (let i = 0, k = 0; i < t.length; k++) {
            const n = cuts[k % cuts.length];
            pieces.push(t.slice(i, i + n));
            i += n;
          }
          expect(streamed(pieces, width)).toEqual(wrapText(t, width));
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('SideBySide', () => {
  it('prints a row once both of its cells are final, padded to the column, with the separator', () => {
    const rows: string[] = [];
    const t = new SideBySide(23, (r) => rows.push(r)); // columns of 10
    t.push(0, 'one two three ');
    expect(rows).toEqual([]); // the right cell of the first row is not known yet
    t.push(1, 'alpha beta gamma ');
    expect(rows).toEqual(['one two    │ alpha beta\n']);
    t.finish(1); // the right column is done; "three" may still grow into "threefold"
    expect(rows).toHaveLength(1);
    t.push(0, 'fourteen');
    expect(rows.at(-1)).toBe('three      │ gamma\n');
    t.finish(0);
    expect(rows.at(-1)).toBe('fourteen   │\n');
    expect(rows).toHaveLength(3);
  });
});
