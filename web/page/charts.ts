/**
 * The step view's bar charts, as plain SVG. Why not a charting library: each chart is a handful of
 * labelled horizontal bars, about forty lines here; and the labels, token strings, must be real text
 * (selectable, read by screen readers, checked by the test), which canvas-based libraries would paint
 * as pixels. No dependency, nothing to configure.
 */
import type { TracedEntry } from '../../src/api.ts';

const SVG = 'http://www.w3.org/2000/svg';

/** A token as a label: spaces and line breaks made visible, so ' the' and 'the' can be told apart. */
export function visibleToken(text: string | null, id: number): string {
  if (text === null) return `#${id}`;
  if (text === '') return '∅';
  return text.replace(/ /g, '␣').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}

export interface BarMarks {
  /** The token ROSE chose at this step. */
  chosen: number;
  /** The token plain greedy decoding would have chosen (argmax of p_pos). */
  plain: number;
}

const el = <K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, text?: string) => {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
};

/**
 * Horizontal bars of probability, one per entry, on a 0–1 scale shared by all charts (so the three
 * charts of a step compare at a glance). The chosen token's bar is drawn in the ROSE colour, plain
 * greedy's in the plain colour.
 */
export function barChart(entries: readonly TracedEntry[], marks: BarMarks, label: string): SVGSVGElement {
  const rowH = 22;
  const labelW = 120;
  const barW = 170;
  const valueW = 52;
  const width = labelW + barW + valueW;
  const height = entries.length * rowH + 4;
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label, class: 'bars' });
  entries.forEach((e, i) => {
    const y = i * rowH + 2;
    const kind = e.id === marks.chosen ? 'chosen' : e.id === marks.plain ? 'plain' : 'other';
    const row = el('g', { class: `bar ${kind}`, 'data-token': e.id });
    row.append(
      el('text', { x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end', class: 'token-label' }, visibleToken(e.text, e.id)),
      el('rect', { x: labelW, y: y + 3, width: Math.max(1, e.p * barW), height: rowH - 6, rx: 2 }),
      el('text', { x: labelW + Math.max(1, e.p * barW) + 4, y: y + rowH / 2 + 4, class: 'value' }, e.p < 0.001 ? '<0.001' : e.p.toFixed(3)),
    );
    row.append(el('title', {}, `${JSON.stringify(e.text)} (id ${e.id}): p = ${e.p}`));
    svg.append(row);
  });
  return svg;
}
