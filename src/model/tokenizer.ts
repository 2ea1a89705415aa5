/**
 * The tokenizer of a Hugging Face checkpoint folder: tokenizer.json (through @huggingface/tokenizers,
 * the pure-JS port of HF tokenizers), tokenizer_config.json (chat_template, special tokens,
 * add_bos_token) and generation_config.json (eos_token_id).
 *
 * Conventions, following transformers where they matter for token ids:
 * - encode(text, {addSpecialTokens: true}) is HF `tokenizer.encode(text)`: the tokenizer.json
 *   post-processor adds the special tokens (BOS for Llama). For the classes whose Python tokenizer
 *   rebuilds that post-processor from add_bos_token / add_eos_token (LlamaTokenizer[Fast],
 *   CodeLlamaTokenizer[Fast], GemmaTokenizer[Fast]), those flags decide instead (defaults: BOS yes,
 *   EOS no), as LlamaTokenizerFast.update_post_processor does.
 * - decode(ids) is HF `tokenizer.decode(ids)`: special tokens are kept unless asked otherwise, ids
 *   with no token are skipped (as the Rust decoder does), and clean_up_tokenization_spaces is applied
 *   only when tokenizer_config.json sets it to true (transformers' default is false).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';
import { RoseError } from '../errors.ts';
import { isObject, isTokenId, show } from '../json.ts';
import type { LlamaConfig } from './config.ts';
import { inFolder, type CheckpointFiles } from './files.ts';

/**
 * The part of @huggingface/tokenizers (0.2.x) used here, typed by hand: the package's .d.ts files
 * import each other without file extensions, which NodeNext resolution cannot follow, so TypeScript
 * sees its exports as `any`. These signatures are copied from its types/core/Tokenizer.d.ts and were
 * checked against dist/tokenizers.mjs: the constructor takes the parsed tokenizer.json (it requires
 * the keys model, decoder, post_processor, pre_tokenizer, normalizer and iterates added_tokens) and
 * the parsed tokenizer_config.json; encode() applies the post-processor only when add_special_tokens
 * (default true); decode() throws on an empty list, maps ids it has no token for to the unk token,
 * and applies clean_up_tokenization_spaces unless told otherwise (its default is true, unlike
 * transformers'); model.vocab is id → token, holding the added tokens too.
 */
interface HfTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[]; tokens: string[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean | null }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  model: { vocab: string[] } | null;
}
const Tokenizer: new (tokenizerJson: object, config: object) => HfTokenizer = HfTokenizerClass;

/** End-of-turn tokens of common chat templates; each one present in the vocab is a stop id. */
export const END_OF_TURN_TOKENS: readonly string[] = ['<|eot_id|>', '<|im_end|>', '<|end|>', '</s>', '<end_of_turn>'];

/** Tokenizer classes whose add_bos_token / add_eos_token flags override tokenizer.json's post-processor. */
const FLAG_DRIVEN_CLASSES = new Set([
  'LlamaTokenizer',
  'LlamaTokenizerFast',
  'CodeLlamaTokenizer',
  'CodeLlamaTokenizerFast',
  'GemmaTokenizer',
  'GemmaTokenizerFast',
]);

export interface EncodeOptions {
  /** Add the tokenizer's special tokens (BOS for Llama), as HF encode() does by default. Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (<s>, </s>, <|eot_id|>, …) from the text. Default false, as in HF. */
  skipSpecialTokens?: boolean;
  /** Override tokenizer_config.json's clean_up_tokenization_spaces (" ." → "." etc.). */
  cleanUpTokenizationSpaces?: boolean;
}

/** What tokenizer_config.json says, checked. */
export interface TokenizerSettings {
  chatTemplate: string | null;
  bosToken: string | null;
  eosToken: string | null;
  unkToken: string | null;
  padToken: string | null;
  /** null when the file does not set it. */
  addBosToken: boolean | null;
  addEosToken: boolean | null;
  tokenizerClass: string | null;
  cleanUpTokenizationSpaces: boolean;
}

const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);

const bad = (file: string, what: string, hint: string): RoseError => new RoseError('INPUT', `${file}: ${what}`, hint);

const TOKENIZER_HINT =
  'tokenizer.json must be the file Hugging Face tokenizers writes (tokenizer.save / save_pretrained); download or export it again';
const CONFIG_HINT =
  'tokenizer_config.json must be the JSON object transformers writes with save_pretrained; download it again or remove it';
const GENERATION_HINT = 'generation_config.json must be the JSON object transformers writes; download it again or remove it';

/** A special token in tokenizer_config.json: a string, an AddedToken object {content: …}, or null. */
function tokenField(cfg: Record<string, unknown>, key: string, file: string): string | null {
  const v = own(cfg, key);
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  throw bad(file, `${key} must be a string, an object with "content", or null, got ${show(v)}`, CONFIG_HINT);
}

function boolField(cfg: Record<string, unknown>, key: string, file: string): boolean | null {
  const v = own(cfg, key);
  if (v === undefined || v === null) return null;
  if (typeof v !== 'boolean') throw bad(file, `${key} must be true or false, got ${show(v)}`, CONFIG_HINT);
  return v;
}

/** chat_template: a string, or (older files) a list of {name, template} of which 'default' is used. */
function chatTemplateField(cfg: Record<string, unknown>, file: string): string | null {
  const v = own(cfg, 'chat_template');
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((t) => isObject(t) && typeof t.name === 'string' && typeof t.template === 'string')) {
    const named = v as { name: string; template: string }[];
    return (named.find((t) => t.name === 'default') ?? named[0])?.template ?? null;
  }
  throw bad(file, `chat_template must be a string or a list of {name, template}, got ${show(v)}`, CONFIG_HINT);
}

/** Checks a parsed tokenizer_config.json. */
export function parseTokenizerSettings(json: unknown, file = 'tokenizer_config.json'): TokenizerSettings {
  if (!isObject(json)) throw bad(file, `must be a JSON object, got ${show(json)}`, CONFIG_HINT);
  const cls = own(json, 'tokenizer_class');
  if (cls !== undefined && cls !== null && typeof cls !== 'string')
    throw bad(file, `tokenizer_class must be a string, got ${show(cls)}`, CONFIG_HINT);
  const extra = own(json, 'additional_special_tokens');
  if (
    extra !== undefined &&
    extra !== null &&
    !(Array.isArray(extra) && extra.every((t) => typeof t === 'string' || (isObject(t) && typeof t.content === 'string')))
  ) {
    throw bad(file, `additional_special_tokens must be a list of tokens, got ${show(extra)}`, CONFIG_HINT);
  }
  return {
    chatTemplate: chatTemplateField(json, file),
    bosToken: tokenField(json, 'bos_token', file),
    eosToken: tokenField(json, 'eos_token', file),
    unkToken: tokenField(json, 'unk_token', file),
    padToken: tokenField(json, 'pad_token', file),
    addBosToken: boolField(json, 'add_bos_token', file),
    addEosToken: boolField(json, 'add_eos_token', file),
    tokenizerClass: typeof cls === 'string' ? cls : null,
    cleanUpTokenizationSpaces: boolField(json, 'clean_up_tokenization_spaces', file) ?? false,
  };
}

/** eos_token_id of a parsed generation_config.json: one id, a list, or nothing. */
export function parseGenerationEosIds(json: unknown, file = 'generation_config.json'): number[] {
  if (!isObject(json)) throw bad(file, `must be a JSON object, got ${show(json)}`, GENERATION_HINT);
  const v = own(json, 'eos_token_id');
  if (v === undefined || v === null) return [];
  if (isTokenId(v)) return [v];
  if (Array.isArray(v) && v.every(isTokenId)) return [...v];
  throw bad(file, `eos_token_id must be a token id, a list of token ids, or null, got ${show(v)}`, GENERATION_HINT);
}

/** Tokenizer models @huggingface/tokenizers implements (WordLevel through its Legacy model). */
const MODEL_TYPES = new Set(['BPE', 'WordPiece', 'Unigram', 'WordLevel']);

/** Structural checks the JS library does not make, so a broken file fails here with its name. */
function checkTokenizerJson(json: unknown, file: string): Record<string, unknown> {
  if (!isObject(json)) throw bad(file, `must be a JSON object, got ${show(json)}`, TOKENIZER_HINT);
  const model = own(json, 'model');
  if (!isObject(model)) throw bad(file, `"model" must be an object, got ${show(model)}`, TOKENIZER_HINT);
  const vocab = own(model, 'vocab');
  if (vocab === undefined || vocab === null || typeof vocab !== 'object')
    throw bad(file, `model.vocab must be an object or a list, got ${show(vocab)}`, TOKENIZER_HINT);
  if (isObject(vocab)) {
    for (const [tok, id] of Object.entries(vocab)) {
      if (!isTokenId(id)) throw bad(file, `model.vocab[${show(tok)}] must be a token id (an integer ≥ 0), got ${show(id)}`, TOKENIZER_HINT);
    }
  }
  const type = own(model, 'type');
  if (type !== undefined && !(typeof type === 'string' && MODEL_TYPES.has(type))) {
    throw bad(file, `model.type ${show(type)} is not supported`, `the tokenizer models supported are ${[...MODEL_TYPES].join(', ')}`);
  }
  if (type === 'BPE') {
    const merges = own(model, 'merges');
    if (
      !Array.isArray(merges) ||
      !merges.every((m) => typeof m === 'string' || (Array.isArray(m) && m.length === 2 && m.every((p) => typeof p === 'string')))
    ) {
      throw bad(file, `model.merges must be a list of "a b" strings or [a, b] pairs`, TOKENIZER_HINT);
    }
  }
  const added = own(json, 'added_tokens') ?? [];
  if (!Array.isArray(added)) throw bad(file, `added_tokens must be a list, got ${show(added)}`, TOKENIZER_HINT);
  for (const t of added) {
    if (!isObject(t) || !isTokenId(t.id) || typeof t.content !== 'string' || t.content.length === 0) {
      throw bad(file, `every added token needs an integer id ≥ 0 and a non-empty content, got ${show(t)}`, TOKENIZER_HINT);
    }
  }
  // The library requires these keys to exist (null is fine).
  const out: Record<string, unknown> = { ...json, added_tokens: added };
  for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (!Object.hasOwn(out, k)) out[k] = null;
  return out;
}

export interface TokenizerSources {
  /** Where the files came from, for messages (a folder, or '<memory>'). */
  dir: string;
  tokenizerJson: unknown;
  /** Parsed tokenizer_config.json; {} when absent. */
  tokenizerConfig?: unknown;
  /** Parsed generation_config.json; undefined when absent. */
  generationConfig?: unknown;
  /** A chat template found outside tokenizer_config.json (chat_template.jinja); the config's wins. */
  chatTemplate?: string | null;
  /** Where a file of `dir` is, for messages (default: dir/name). */
  where?: (name: string) => string;
}

export class RoseTokenizer {
  /** Ids 0..vocabSize-1 may have tokens: the largest id in the vocab or the added tokens, plus 1. */
  readonly vocabSize: number;
  readonly settings: TokenizerSettings;
  /** eos_token_id of generation_config.json (empty when there is none). */
  readonly generationEosIds: readonly number[];
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  private readonly tok: HfTokenizer;
  private readonly flagDriven: boolean;

  private constructor(
    readonly dir: string,
    tok: HfTokenizer,
    settings: TokenizerSettings,
    generationEosIds: number[],
  ) {
    this.tok = tok;
    this.settings = settings;
    this.generationEosIds = generationEosIds;
    this.vocabSize = tok.model?.vocab.length ?? 0;
    this.bosTokenId = settings.bosToken === null ? null : (this.tokenToId(settings.bosToken) ?? null);
    this.eosTokenId = settings.eosToken === null ? null : (this.tokenToId(settings.eosToken) ?? null);
    this.flagDriven = settings.tokenizerClass !== null && FLAG_DRIVEN_CLASSES.has(settings.tokenizerClass);
  }

  /** Builds a tokenizer from parsed files; every problem is a RoseError('INPUT') naming the file. */
  static fromJSON(src: TokenizerSources): RoseTokenizer {
    const file = (name: string) => (src.dir === '<memory>' ? name : (src.where ?? ((n: string) => inFolder(src.dir, n)))(name));
    const tjFile = file('tokenizer.json');
    const tcFile = file('tokenizer_config.json');
    const gcFile = file('generation_config.json');
    const tokenizerJson = checkTokenizerJson(src.tokenizerJson, tjFile);
    const config = src.tokenizerConfig ?? {};
    const settings = parseTokenizerSettings(config, tcFile);
    if (settings.chatTemplate === null && src.chatTemplate) settings.chatTemplate = src.chatTemplate;
    const genEos = src.generationConfig === undefined ? [] : parseGenerationEosIds(src.generationConfig, gcFile);
    let tok: HfTokenizer;
    try {
      // The library reads only a few plain fields of the config (additional_special_tokens, …).
      const libConfig: Record<string, unknown> = { ...(config as Record<string, unknown>) };
      if (Array.isArray(libConfig.additional_special_tokens)) {
        libConfig.additional_special_tokens = (libConfig.additional_special_tokens as unknown[]).map((t) => (isObject(t) ? t.content : t));
      }
      tok = new Tokenizer(tokenizerJson, libConfig);
      tok.encode('Hello, world! 123', { add_special_tokens: true }); // surfaces lazy failures (regexes, merges) now
    } catch (e) {
      throw bad(tjFile, `cannot build a tokenizer from it: ${e instanceof Error ? e.message : String(e)}`, TOKENIZER_HINT);
    }
    return new RoseTokenizer(src.dir, tok, settings, genEos);
  }

  get chatTemplate(): string | null {
    return this.settings.chatTemplate;
  }
  get bosToken(): string | null {
    return this.settings.bosToken;
  }
  get eosToken(): string | null {
    return this.settings.eosToken;
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecialTokens ?? true;
    if (!this.flagDriven || !addSpecial) return this.tok.encode(text, { add_special_tokens: addSpecial }).ids;
    // LlamaTokenizerFast & co.: `bos? $A eos?` from the flags, whatever tokenizer.json's post-processor says.
    const ids = this.tok.encode(text, { add_special_tokens: false }).ids;
    if ((this.settings.addBosToken ?? true) && this.bosTokenId !== null) ids.unshift(this.bosTokenId);
    if ((this.settings.addEosToken ?? false) && this.eosTokenId !== null) ids.push(this.eosTokenId);
    return ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const known: number[] = [];
    for (const id of ids) {
      if (!Number.isSafeInteger(id)) throw new RoseError('INPUT', `cannot decode ${show(id)}: token ids are integers`);
      if (this.tok.id_to_token(id) !== undefined) known.push(id); // ids with no token are skipped, as in HF
    }
    if (known.length === 0) return ''; // the library refuses an empty list
    return this.tok.decode(known, {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces ?? this.settings.cleanUpTokenizationSpaces,
    });
  }

  /**
   * Every id that ends a turn, sorted: config.json's eos ids, generation_config.json's, the
   * tokenizer_config eos_token, and each of END_OF_TURN_TOKENS that the vocab holds.
   */
  stopIds(config: LlamaConfig): number[] {
    const ids = new Set<number>([...config.eosTokenIds, ...this.generationEosIds]);
    if (this.eosTokenId !== null) ids.add(this.eosTokenId);
    for (const t of END_OF_TURN_TOKENS) {
      const id = this.tokenToId(t);
      if (id !== undefined) ids.add(id);
    }
    return [...ids].sort((a, b) => a - b);
  }
}

async function readOptional(path: string, hint: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RoseError('INPUT', `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, hint);
  }
}

function parseJson(text: string, path: string, hint: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new RoseError('INPUT', `${path} is not valid JSON (${(e as Error).message.slice(0, 200)})`, hint);
  }
}

/**
 * Loads the tokenizer of a checkpoint folder, or null when the folder has no tokenizer.json.
 * tokenizer_config.json and generation_config.json are optional; a chat_template.jinja file is used
 * when tokenizer_config.json has no chat_template (as transformers ≥ 4.43 does).
 */
export async function loadTokenizer(dir: string): Promise<RoseTokenizer | null> {
  const tjPath = join(dir, 'tokenizer.json');
  const tjText = await readOptional(tjPath, TOKENIZER_HINT);
  if (tjText === undefined) return null;
  const [tcText, gcText, jinja] = await Promise.all([
    readOptional(join(dir, 'tokenizer_config.json'), CONFIG_HINT),
    readOptional(join(dir, 'generation_config.json'), GENERATION_HINT),
    readOptional(join(dir, 'chat_template.jinja'), CONFIG_HINT),
  ]);
  return tokenizerFromTexts(dir, (name) => join(dir, name), tjText, tcText, gcText, jinja);
}

/** loadTokenizer for a set of files (a folder picked in a browser, or a URL). */
export async function loadTokenizerFrom(files: CheckpointFiles): Promise<RoseTokenizer | null> {
  const tjText = await files.text('tokenizer.json');
  if (tjText === undefined) return null;
  const [tcText, gcText, jinja] = await Promise.all(
    ['tokenizer_config.json', 'generation_config.json', 'chat_template.jinja'].map((name) => files.text(name)),
  );
  return tokenizerFromTexts(files.label, files.where, tjText, tcText, gcText, jinja);
}

/** The tokenizer from the texts of its files (undefined: the file is absent). */
function tokenizerFromTexts(
  dir: string,
  where: (name: string) => string,
  tjText: string,
  tcText: string | undefined,
  gcText: string | undefined,
  jinja: string | undefined,
): RoseTokenizer {
  return RoseTokenizer.fromJSON({
    dir,
    tokenizerJson: parseJson(tjText, where('tokenizer.json'), TOKENIZER_HINT),
    tokenizerConfig: tcText === undefined ? {} : parseJson(tcText, where('tokenizer_config.json'), CONFIG_HINT),
    generationConfig: gcText === undefined ? undefined : parseJson(gcText, where('generation_config.json'), GENERATION_HINT),
    chatTemplate: jinja ?? null,
    where,
  });
}

/**
 * A tokenizer whose ids reach past the model's embedding table would feed the model ids it has no
 * row for: RoseError('LIMIT'). (A model vocab larger than the tokenizer's is fine and common: padding.)
 */
export function checkTokenizerFitsModel(tok: RoseTokenizer, config: LlamaConfig): void {
  if (tok.vocabSize > config.vocabSize) {
    throw new RoseError(
      'LIMIT',
      `the tokenizer in ${tok.dir} has ids up to ${tok.vocabSize - 1} (${tok.vocabSize} ids) but the model's vocab_size is ${config.vocabSize}: ` +
        `ids ${config.vocabSize}..${tok.vocabSize - 1} have no embedding row`,
      'use the tokenizer that came with this checkpoint (tokenizer.json next to config.json)',
    );
  }
}

/**
 * Streaming detokenization that never splits a character.
 *
 * push() takes the next id and returns the text it completes: the window of ids since the last emit
 * boundary is decoded, and only its new suffix is emitted, and only once the decoded text does not end
 * in U+FFFD (a multi-byte character still waiting for its last bytes). The window starts one emit
 * earlier (the text-generation-inference scheme), so decoders that treat a leading token specially
 * (Metaspace's leading space) still see its left context, and each step costs O(window), not O(n).
 * flush() emits whatever is held back (an unfinished character decodes to U+FFFD there, as decode()
 * would). For byte-level BPE the concatenation of everything emitted equals decode(all ids) with
 * clean_up_tokenization_spaces off (which is what this decoder uses: clean-up is not prefix-stable).
 */
export class StreamDecoder {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  private emitted = '';

  constructor(
    private readonly tok: Pick<RoseTokenizer, 'decode'>,
    private readonly opts: { skipSpecialTokens?: boolean } = {},
  ) {}

  private decode(ids: readonly number[]): string {
    return this.tok.decode(ids, { skipSpecialTokens: this.opts.skipSpecialTokens, cleanUpTokenizationSpaces: false });
  }

  /** Appends one id; returns the newly completed text ('' while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      const out = full.slice(prefix.length);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      this.emitted += out;
      return out;
    }
    return '';
  }

  /** push() for several ids; returns the concatenated new text. */
  pushAll(ids: readonly number[]): string {
    let s = '';
    for (const id of ids) s += this.push(id);
    return s;
  }

  /** Emits whatever is still held back; the decoder is then at a boundary again. */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decode(this.ids.slice(this.prefixOffset));
    const out = full.slice(prefix.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.emitted += out;
    return out;
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  /** All ids pushed so far. */
  get tokenIds(): readonly number[] {
    return this.ids;
  }
}
