/**
 * Two answers side by side on a terminal, printed as they are generated: `rose generate --compare`.
 *
 * Each column is word-wrapped (breaks at spaces; only a word wider than the column is split)
 * and a row is printed as soon as both of its cells are final. A wrapped line is final once the text
 * after it has started a next line: greedy wrapping never moves a break that is already followed by
 * more text, so what is printed is exactly what wrapping the whole answer at the end would give.
 */
import stringWidth from 'string-width';
import wrapAnsi from 'wrap-ansi';

/**
 * Greedy word wrap of one paragraph: wrap-ansi without its `hard` mode (which starts a too-long word on
 * the current line, so a line could change as the word grows), then a word wider than the column is
 * cut into column-wide pieces on lines of its own.
 */
function wrapWords(paragraph: string, width: number): string[] {
  return wrapAnsi(paragraph, width, { hard: false, trim: true })
    .split('\n')
    .flatMap((line) => {
      if (stringWidth(line) <= width) return [line];
      const pieces = [''];
      for (const ch of line) {
        if (stringWidth(pieces[pieces.length - 1] + ch) > width) pieces.push(ch);
        else pieces[pieces.length - 1] += ch;
      }
      return pieces;
    });
}

/** Greedy word wrap of a text that grows at its end; hands out each line once it is final. */
export class StreamWrapper {
  private readonly ready: string[] = [];
  /** The current paragraph (text since the last '\n'), and how many of its wrapped lines were handed out. */
  private paragraph = '';
  private taken = 0;
  private finished = false;

  constructor(readonly width: number) {}

  push(text: string): void {
    const parts = text.split('\n');
    parts.forEach((part, i) => {
      this.paragraph += part;
      this.release(i < parts.length - 1);
      if (i < parts.length - 1) {
        this.paragraph = '';
        this.taken = 0;
      }
    });
  }

  /** The text is complete: its last line is final too. */
  finish(): void {
    if (this.paragraph !== '') this.release(true);
    this.finished = true;
  }

  get done(): boolean {
    return this.finished && this.ready.length === 0;
  }

  /** The next final line, or undefined when none is ready yet. */
  take(): string | undefined {
    return this.ready.shift();
  }

  get available(): number {
    return this.ready.length;
  }

  private release(all: boolean): void {
    const lines = this.paragraph === '' ? [''] : wrapWords(this.paragraph, this.width);
    const upTo = all ? lines.length : lines.length - 1;
    for (; this.taken < upTo; this.taken++) this.ready.push(lines[this.taken]);
  }
}

/** Wraps a whole text at once: the lines StreamWrapper hands out for it. */
export function wrapText(text: string, width: number): string[] {
  const w = new StreamWrapper(width);
  w.push(text);
  w.finish();
  const lines: string[] = [];
  for (let l = w.take(); l !== undefined; l = w.take()) lines.push(l);
  return lines;
}

export const SEPARATOR = ' │ ';

/** Two live columns; `write` gets whole rows ('left │ right\n'). */
export class SideBySide {
  readonly column: number;
  private readonly cells: [StreamWrapper, StreamWrapper];

  constructor(
    width: number,
    private readonly write: (row: string) => void,
  ) {
    this.column = Math.max(10, Math.floor((width - SEPARATOR.length) / 2));
    this.cells = [new StreamWrapper(this.column), new StreamWrapper(this.column)];
  }

  /** One row per line of the longer of two complete texts (headers, footers). */
  rows(left: string, right: string): void {
    const a = wrapText(left, this.column);
    const b = wrapText(right, this.column);
    for (let i = 0; i < Math.max(a.length, b.length); i++) this.row(a[i] ?? '', b[i] ?? '');
  }

  /** A horizontal rule under each column. */
  rule(): void {
    this.row('─'.repeat(this.column), '─'.repeat(this.column));
  }

  /** More text for one column (0 = left, 1 = right); prints the rows that became final. */
  push(side: 0 | 1, text: string): void {
    this.cells[side].push(text);
    this.flush();
  }

  /** One column's text is complete. */
  finish(side: 0 | 1): void {
    this.cells[side].finish();
    this.flush();
  }

  private flush(): void {
    const [l, r] = this.cells;
    while ((l.available > 0 || l.done) && (r.available > 0 || r.done) && !(l.done && r.done)) this.row(l.take() ?? '', r.take() ?? '');
  }

  private row(left: string, right: string): void {
    const cells = `${left}${' '.repeat(Math.max(0, this.column - stringWidth(left)))}${SEPARATOR}${right}`;
    this.write(`${cells.trimEnd()}\n`);
  }
}
