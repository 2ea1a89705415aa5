/**
 * `rose tokenize`: what the model sees for a question under each prompt, as text and as token ids,
 * with no weights loaded. The ids go as they are into `rose generate --ids … --reverse-ids …`,
 * `rose logits --ids …`, or another backend under test.
 */
import { tokenize } from '../api.ts';
import type { TemplateMode } from '../decode/template.ts';

export interface TokenizeCliOptions {
  model: string;
  prompt: string;
  system?: string;
  reverse: string[];
  template: TemplateMode;
  json?: boolean;
}

export async function tokenizeCommand(o: TokenizeCliOptions): Promise<void> {
  const p = await tokenize(o.model, o.prompt, {
    positive: o.system ?? 'default',
    reverse: o.reverse.length ? o.reverse : 'manual',
    template: o.template,
  });
  const rows = [p.positive, ...p.reverse].map((prompt, i) => ({
    role: i === 0 ? 'positive' : 'reverse',
    prompt: prompt.label,
    text: p.texts[i],
    ids: p.rows[i],
  }));
  for (const n of p.notes) process.stderr.write(`rose: note: ${n}\n`);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ model: o.model, template: o.template, rows })}\n`);
    return;
  }
  const lines = rows.flatMap((r, i) => [
    `${i === 0 ? 'positive' : `reverse ${i}`}: ${r.prompt}, ${r.ids.length} tokens`,
    `  text: ${JSON.stringify(r.text)}`,
    `  ids:  ${r.ids.join(',')}`,
  ]);
  process.stdout.write(`${lines.join('\n')}\n`);
}
