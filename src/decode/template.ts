/**
 * Placing a prompt (positive or reverse) and the user's query into the model's input (rose-spec §2.3).
 *
 * Two modes:
 * - 'paper': the official ROSE code's plain template, for every model alike:
 *     `${P}\nHuman:\n${q}\n\nAssistant:\n`
 *   tokenized as HF `tokenizer.encode(text)` does, i.e. with the tokenizer's default special tokens
 *   (BOS for Llama).
 * - 'chat': the model's own chat_template (tokenizer_config.json), rendered through
 *   @huggingface/jinja with messages [{system: P}, {user: q}] and add_generation_prompt = true, as
 *   `apply_chat_template` does; bos_token / eos_token (and unk/pad when set) come from
 *   tokenizer_config.json. The rendered text already holds whatever BOS the template writes, so it is
 *   tokenized WITHOUT adding special tokens again (apply_chat_template(tokenize=True) does the same).
 *   A template with no system role gets the prompt prepended to the user turn, and a note says so.
 */
import { Template } from '@huggingface/jinja';
import { RoseError } from '../errors.ts';
import type { RoseTokenizer } from '../model/tokenizer.ts';

export type TemplateMode = 'paper' | 'chat';

export const TEMPLATE_MODES: readonly TemplateMode[] = ['paper', 'chat'];

export interface TemplatedPrompt {
  mode: TemplateMode;
  /** The exact text that was tokenized. */
  text: string;
  ids: number[];
  /** Set when the template could not be used as asked (no system role, …). */
  note?: string;
}

/** The official code's template: `f"{P}\nHuman:\n{query}\n\nAssistant:\n"` (rose-spec §1.1). */
export function paperTemplateText(prompt: string, query: string): string {
  return `${prompt}\nHuman:\n${query}\n\nAssistant:\n`;
}

/** How the prompt is joined to the query when a template has no system role. */
export const PREPEND_SEPARATOR = '\n\n';

export interface ChatVariables {
  bos_token?: string | null;
  eos_token?: string | null;
  unk_token?: string | null;
  pad_token?: string | null;
}

export interface ChatRender {
  text: string;
  /** False when the prompt had to go into the user turn. */
  systemRole: boolean;
  note?: string;
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).slice(0, 300);

/** Parses a chat template; a syntax error is RoseError('INPUT'). */
export function compileChatTemplate(source: string, where = 'the chat_template'): Template {
  try {
    return new Template(source);
  } catch (e) {
    throw new RoseError(
      'INPUT',
      `${where} does not parse as Jinja: ${errorText(e)}`,
      "use --template paper, or fix the model's chat_template",
    );
  }
}

/**
 * Renders [{system: prompt}, {user: query}] with add_generation_prompt. When the template raises on a
 * system message (Gemma: raise_exception('System role not supported')) or renders without the
 * prompt's text (it ignores the system turn), the prompt is prepended to the user turn instead
 * (separated by a blank line) and `note` says so.
 *
 * Whether the template *mentions* 'system' is deliberately not the test: the real Llama-3 template
 * and the generic ChatML one never name the role, yet render any role, system included, as trained.
 */
export function renderChat(
  source: string,
  prompt: string,
  query: string,
  vars: ChatVariables = {},
  where = 'the chat_template',
): ChatRender {
  const template = compileChatTemplate(source, where);
  const base: Record<string, unknown> = { add_generation_prompt: true };
  for (const [k, v] of Object.entries(vars)) if (typeof v === 'string') base[k] = v;
  const render = (messages: { role: string; content: string }[]): string => template.render({ ...base, messages });

  let why: string;
  try {
    const text = render([
      { role: 'system', content: prompt },
      { role: 'user', content: query },
    ]);
    if (text.includes(prompt)) return { text, systemRole: true };
    why = /\bsystem\b/.test(source) ? 'dropped the system message' : 'never mentions a system role and dropped the system message';
  } catch (e) {
    why = `rejects a system message (${errorText(e)})`;
  }
  let text: string;
  try {
    text = render([{ role: 'user', content: `${prompt}${PREPEND_SEPARATOR}${query}` }]);
  } catch (e) {
    throw new RoseError('INPUT', `${where} failed to render a single user message: ${errorText(e)}`, 'use --template paper');
  }
  return {
    text,
    systemRole: false,
    note: `${where} ${why}; the prompt was prepended to the user turn, separated by a blank line`,
  };
}

/** The model input for one prompt and one query, as text and as token ids. */
export function applyTemplate(tok: RoseTokenizer, mode: TemplateMode, prompt: string, query: string): TemplatedPrompt {
  if (mode === 'paper') {
    const text = paperTemplateText(prompt, query);
    return { mode, text, ids: tok.encode(text, { addSpecialTokens: true }) };
  }
  if (mode !== 'chat') throw new RoseError('INPUT', `unknown template mode ${JSON.stringify(mode)}`, "use 'paper' or 'chat'");
  const source = tok.chatTemplate;
  if (source === null) {
    throw new RoseError(
      'INPUT',
      `the tokenizer in ${tok.dir} has no chat_template`,
      'use --template paper (the official ROSE template), or add a chat_template to tokenizer_config.json',
    );
  }
  const s = tok.settings;
  const r = renderChat(
    source,
    prompt,
    query,
    { bos_token: s.bosToken, eos_token: s.eosToken, unk_token: s.unkToken, pad_token: s.padToken },
    `the chat_template of ${tok.dir}`,
  );
  const out: TemplatedPrompt = { mode, text: r.text, ids: tok.encode(r.text, { addSpecialTokens: false }) };
  if (r.note !== undefined) out.note = r.note;
  return out;
}
