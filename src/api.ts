/**
 * The public API: load a checkpoint once, then stream ROSE (or plain) answers as tokens and text.
 *
 *   const rose = await Rose.open('weights/rose-micro', { backend: 'auto' });
 *   for await (const piece of rose.stream('How do I bake bread?')) process.stdout.write(piece.text);
 *   rose.close();
 *
 * Everything here is glue over the layers below: model/ (checkpoint, tokenizer, forward pass) and
 * decode/ (prompts, templates, the ROSE loop).
 *
 * It runs in a browser too (the teaching page, web/): there, Rose.open takes a set of files (urlFiles,
 * blobFiles) instead of a folder path, and nothing touches node:*.
 */
import { fileURLToPath } from 'node:url';
import { RoseError } from './errors.ts';
import type { Backend } from './kernels/backend.ts';
import { CpuBackend } from './kernels/cpu/backend.ts';
import type { KernelChoice } from './kernels/registry.ts';
import { openBackend, summarizeBackend, type BackendKind, type BackendOptions, type BackendSummary } from './kernels/select.ts';
import { loadLlamaConfig, loadLlamaConfigFrom, type LlamaConfig } from './model/config.ts';
import type { CheckpointFiles } from './model/files.ts';
import { loadLlama, loadLlamaFrom } from './model/load.ts';
import type { Llama } from './model/llama.ts';
import { SafetensorsCheckpoint } from './model/safetensors.ts';
import { checkTokenizerFitsModel, loadTokenizer, loadTokenizerFrom, StreamDecoder, type RoseTokenizer } from './model/tokenizer.ts';
import { plannedWeights } from './model/weights.ts';
import { resolvePositivePrompt, resolveReversePrompt, type ResolvedPrompt } from './decode/prompts.ts';
import { roseDecode, type RoseOptions, type RoseResult, type TraceStep } from './decode/rose.ts';
import { applyTemplate, type TemplateMode } from './decode/template.ts';
import { traceStepToJson, traceToJson, type TracedStep, type TraceJson } from './decode/trace.ts';

export type { BackendKind, BackendSummary } from './kernels/select.ts';
export type { AdapterSummary } from './kernels/webgpu/device.ts';
export { RoseError, type RoseErrorCode } from './errors.ts';
export { TRACE_FORMAT, traceToJson, type TraceJson, type TracedStep, type TracedEntry } from './decode/trace.ts';
export { blobFiles, urlFiles, type CheckpointFiles, type NamedBlob, type ReadProgress } from './model/files.ts';
export type { LlamaConfig } from './model/config.ts';
export type { ResolvedPrompt } from './decode/prompts.ts';
export { degenerateContrastWarning } from './decode/rose.ts';
export type { TemplateMode } from './decode/template.ts';
export type { RoseResult, SamplingOptions, TraceStep, TopEntry } from './decode/rose.ts';

const inNode = typeof process !== 'undefined' && !!process.versions?.node;

/**
 * The embedded default checkpoint, rose-micro (weights/rose-micro, trained by weights/recipe/).
 * A browser has no folder paths: the page serves these files at a URL instead ('' there).
 */
export const ROSE_MICRO_DIR: string = inNode ? fileURLToPath(new URL(['..', 'weights', 'rose-micro'].join('/'), import.meta.url)) : '';
// (The path is joined at run time because bundlers rewrite new URL('<literal>', import.meta.url) into an asset.)

export interface OpenOptions {
  /** 'auto' (default): a real GPU adapter when there is one, else the CPU. 'webgpu' also takes software adapters. */
  backend?: BackendKind;
  /** CPU matmul threads (CPU backend, or `auto` when it picks the CPU). Default 1. */
  threads?: number;
  /** Forced kernel variants by op, e.g. { matmul: 3 } (src/kernels/registry.ts); default: each op's automatic choice. */
  kernels?: KernelChoice;
  /** The CPU backend's tier: 'wasm' (WebAssembly SIMD), 'ts' (TypeScript), or 'auto' (default: wasm where it runs). */
  cpuTier?: BackendOptions['cpuTier'];
  onProgress?: (done: number, total: number) => void;
  /** Where backend warnings go (a fault that `auto` falls back from). Default: stderr. */
  warn?: (line: string) => void;
  /** Why `auto` did not pick a GPU, and such details; default: nowhere. */
  note?: (line: string) => void;
}

export interface AskOptions extends Omit<RoseOptions, 'alphas' | 'stopIds'> {
  /** α for each reverse prompt; a single number applies to every one. Default 0.5. α = 0 everywhere is plain decoding. */
  alpha?: number | readonly number[];
  /** The positive (system) prompt: 'default' (the paper's), 'two-paragraph', a file path, or { text }. */
  positive?: Parameters<typeof resolvePositivePrompt>[0];
  /** Reverse prompts: 'manual' (default), 'opposite', 'randwords', a file path, or { text }. */
  reverse?: Parameters<typeof resolveReversePrompt>[0] | readonly Parameters<typeof resolveReversePrompt>[0][];
  /** 'paper' (the official plain template, default) or 'chat' (the model's own chat template). */
  template?: TemplateMode;
  /** Decode plainly with the positive prompt alone (a batch of one): the baseline. */
  plain?: boolean;
  /** Extra stop ids beyond the model's end-of-turn ids. */
  extraStopIds?: readonly number[];
  /** Stops the decoding at the next step (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

/** A question turned into model input: one row per prompt, positive first, with the exact text of each. */
export interface PreparedPrompts {
  /** Token ids of each row: [positive, reverse 1, …]. */
  rows: number[][];
  /** The text each row was tokenized from (template applied). */
  texts: string[];
  positive: ResolvedPrompt;
  reverse: ResolvedPrompt[];
  notes: string[];
}

/** The rows for a question: the positive prompt first, then each reverse prompt (none with `plain`). */
export function preparePrompts(tok: RoseTokenizer, question: string, opts: AskOptions = {}): PreparedPrompts {
  const positive = resolvePositivePrompt(opts.positive ?? 'default');
  const reverseKinds = opts.plain ? [] : Array.isArray(opts.reverse) ? opts.reverse : [opts.reverse ?? 'manual'];
  const reverse = reverseKinds.map((k) => resolveReversePrompt(k, { positive: positive.text }));
  const mode = opts.template ?? 'paper';
  const templated = [positive, ...reverse].map((p) => applyTemplate(tok, mode, p.text, question));
  const notes = [...new Set(templated.map((t) => t.note).filter((n): n is string => !!n))];
  return { rows: templated.map((t) => t.ids), texts: templated.map((t) => t.text), positive, reverse, notes };
}

/** The tokenizer of a checkpoint folder, checked against its config.json; RoseError('INPUT') when it has none. */
export async function openTokenizer(dir: string): Promise<RoseTokenizer> {
  const config = loadLlamaConfig(dir);
  const tok = await loadTokenizer(dir);
  if (!tok) throw noTokenizer();
  checkTokenizerFitsModel(tok, config);
  return tok;
}

/** What the model would see for a question, without loading any weights (`rose tokenize`). */
export async function tokenize(dir: string, question: string, opts: AskOptions = {}): Promise<PreparedPrompts> {
  return preparePrompts(await openTokenizer(dir), question, opts);
}

const noTokenizer = () =>
  new RoseError(
    'INPUT',
    'this checkpoint has no tokenizer.json, so it cannot take text',
    'pass token ids instead: rose generate --ids … --reverse-ids …',
  );

export interface StreamPiece {
  step: number;
  token: number;
  /** Newly completed text (may be '' while a multi-byte character is incomplete). */
  text: string;
  stop: boolean;
  trace?: TraceStep;
}

export interface Answer extends RoseResult {
  text: string;
  prompts: { positive: ResolvedPrompt; reverse: ResolvedPrompt[]; notes: string[] };
  promptTokens: number[];
  tokensPerSecond: number;
}

export class Rose {
  private closed = false;

  private constructor(
    private llama: Llama,
    readonly tokenizer: RoseTokenizer | null,
    private readonly source: string | CheckpointFiles,
    private readonly opts: OpenOptions,
  ) {}

  /** Opens a checkpoint: a folder path (Node), or a set of files (a folder picked in a browser, a URL: files.ts). */
  static async open(source: string | CheckpointFiles, opts: OpenOptions = {}): Promise<Rose> {
    if (typeof source !== 'string') return Rose.openFiles(source, opts);
    const dir = source;
    // The cheap checks first (config, safetensors headers, tokenizer): a typo in the folder is reported
    // at once, not after a GPU has been started.
    const config = loadLlamaConfig(dir);
    SafetensorsCheckpoint.open(dir).close();
    const tokenizer = await loadTokenizer(dir);
    if (tokenizer) checkTokenizerFitsModel(tokenizer, config);
    const backend = await openBackend(opts.backend ?? 'auto', opts.warn, {
      threads: opts.threads,
      kernels: opts.kernels,
      cpuTier: opts.cpuTier,
      note: opts.note,
    });
    try {
      const model = loadLlama(dir, backend, { onProgress: opts.onProgress });
      return new Rose(model, tokenizer, dir, opts);
    } catch (e) {
      backend.destroy();
      throw e;
    }
  }

  /**
   * The same from a set of files. The weights are read whole into memory (files.ts), so the model is
   * first checked against the backend's memory from config.json alone: a model too big for the device
   * is refused before any weight is downloaded.
   */
  private static async openFiles(files: CheckpointFiles, opts: OpenOptions): Promise<Rose> {
    const config = await loadLlamaConfigFrom(files);
    const tokenizer = await loadTokenizerFrom(files);
    if (tokenizer) checkTokenizerFitsModel(tokenizer, config);
    const backend = await openBackend(opts.backend ?? 'auto', opts.warn, {
      threads: opts.threads,
      kernels: opts.kernels,
      cpuTier: opts.cpuTier,
      note: opts.note,
    });
    try {
      backend.checkCapacity(plannedWeights(config));
      const model = await loadLlamaFrom(files, backend, { onProgress: opts.onProgress });
      return new Rose(model, tokenizer, files, opts);
    } catch (e) {
      backend.destroy();
      throw e;
    }
  }

  get model(): Llama {
    return this.llama;
  }
  get config(): LlamaConfig {
    return this.llama.config;
  }
  /** The number of parameters (a tied head counted once). */
  get parameters(): number {
    return plannedWeights(this.config).reduce((n, w) => n + w.elements, 0);
  }
  get backend(): Backend {
    return this.llama.backend;
  }

  /** The backend in a few words ('cpu (1 thread)', 'webgpu (llvmpipe, software)') and its adapter in full. */
  get backendSummary(): BackendSummary {
    return summarizeBackend(this.backend);
  }

  /** Frees the backend. A decoding still running stops at its next step with an error; it never falls back. */
  close(): void {
    this.closed = true;
    this.backend.destroy();
  }

  private checkOpen(): void {
    if (this.closed) throw new RoseError('INPUT', 'this Rose session is closed', 'open a new one with Rose.open()');
  }

  /**
   * With `--backend auto`, a WebGPU fault (a lost device, a kernel that fails) moves the session to
   * the CPU backend, loudly, instead of failing the request. Any other backend choice fails as asked.
   */
  private async fallBackToCpu(error: unknown): Promise<boolean> {
    if (
      this.closed || // closing destroys the device on purpose (Ctrl-C in rose eval): that is no device loss
      (this.opts.backend ?? 'auto') !== 'auto' ||
      this.backend.name !== 'webgpu' ||
      !(error instanceof RoseError) ||
      error.code !== 'BACKEND'
    )
      return false;
    const warn = this.opts.warn ?? ((line: string) => (inNode ? process.stderr.write(`${line}\n`) : console.warn(line)));
    warn(`rose: WARNING: ${error.message}; falling back to the CPU backend and running this request again there`);
    try {
      this.backend.destroy();
    } catch {
      // the device is already gone
    }
    const cpu = new CpuBackend({ threads: this.opts.threads, kernels: this.opts.kernels, tier: this.opts.cpuTier });
    this.llama = typeof this.source === 'string' ? loadLlama(this.source, cpu) : await loadLlamaFrom(this.source, cpu);
    return true;
  }

  /** End-of-turn ids of the model and its tokenizer, plus the caller's extras. */
  stopIds(extra: readonly number[] = []): number[] {
    const ids = this.tokenizer ? this.tokenizer.stopIds(this.model.config) : this.model.config.eosTokenIds;
    return [...new Set([...ids, ...extra])];
  }

  /** The token rows for a question: the positive prompt first, then each reverse prompt. */
  prepare(question: string, opts: AskOptions = {}): PreparedPrompts {
    if (!this.tokenizer) throw noTokenizer();
    return preparePrompts(this.tokenizer, question, opts);
  }

  /** The text of one token id (decoded on its own, special tokens shown), or null without a tokenizer. */
  tokenText(id: number): string | null {
    return this.tokenizer ? this.tokenizer.decode([id], { skipSpecialTokens: false, cleanUpTokenizationSpaces: false }) : null;
  }

  /** An answer asked with `trace`, as the JSON that `rose generate --trace` writes (decode/trace.ts). */
  traceJson(answer: Answer, opts: Pick<AskOptions, 'alpha' | 'beta'> = {}): TraceJson {
    const alpha = opts.alpha ?? 0.5;
    return traceToJson(answer, {
      alphas: typeof alpha === 'number' ? answer.prompts.reverse.map(() => alpha) : [...alpha],
      beta: opts.beta,
      reverse: answer.prompts.reverse.map((r) => r.label),
      promptTokens: answer.promptTokens,
      text: answer.text,
      tokenText: (id) => this.tokenText(id),
    });
  }

  /** One step of a traced answer (StreamPiece.trace) as JSON: the same shape as each step of traceJson. */
  traceStep(step: TraceStep): TracedStep {
    return traceStepToJson(step, (id) => this.tokenText(id));
  }

  /** Streams the answer to a question, token by token, with text. */
  async *stream(question: string, opts: AskOptions = {}): AsyncGenerator<StreamPiece, Answer> {
    const { rows, positive, reverse, notes } = this.prepare(question, opts);
    return yield* this.streamIds(rows[0], rows.slice(1), opts, { positive, reverse, notes });
  }

  /** The same on raw token ids: row 0 positive, the others reverse. */
  async *streamIds(
    positiveIds: readonly number[],
    reverseIds: readonly (readonly number[])[],
    opts: AskOptions = {},
    prompts?: Answer['prompts'],
  ): AsyncGenerator<StreamPiece, Answer> {
    this.checkOpen();
    const emitted: number[] = [];
    for (;;) {
      try {
        const it = this.decode(positiveIds, reverseIds, opts, prompts);
        for (let step = 0; ; step++) {
          const r = await it.next();
          if (r.done) return r.value;
          if (step < emitted.length) {
            // Replaying after a fallback: the tokens already streamed must come out again, or the
            // stream so far cannot be trusted and we say so rather than splice two different answers.
            if (r.value.token !== emitted[step]) {
              throw new RoseError(
                'NUMERIC',
                `after the fallback to the CPU, step ${step} chose token ${r.value.token} where WebGPU had chosen ${emitted[step]}`,
                'the tokens already streamed are not what the CPU computes; run again with --backend cpu',
              );
            }
            continue;
          }
          emitted.push(r.value.token);
          yield r.value;
        }
      } catch (e) {
        if (!(await this.fallBackToCpu(e))) throw e;
      }
    }
  }

  private async *decode(
    positiveIds: readonly number[],
    reverseIds: readonly (readonly number[])[],
    opts: AskOptions,
    prompts?: Answer['prompts'],
  ): AsyncGenerator<StreamPiece, Answer> {
    const rev = opts.plain ? [] : reverseIds;
    const ids = (what: string): ResolvedPrompt => ({ text: '', label: `${what} token ids`, verbatim: false });
    prompts ??= { positive: ids('positive'), reverse: rev.map(() => ids('reverse')), notes: [] };
    const alpha = opts.alpha ?? 0.5;
    const alphas = typeof alpha === 'number' ? rev.map(() => alpha) : alpha;
    const decoder = this.tokenizer ? new StreamDecoder(this.tokenizer, { skipSpecialTokens: true }) : null;
    const it = roseDecode(this.model, positiveIds, rev, { ...opts, alphas, stopIds: this.stopIds(opts.extraStopIds) });
    let text = '';
    for (;;) {
      opts.signal?.throwIfAborted();
      this.checkOpen(); // a session closed mid-answer (rose eval's Ctrl-C) stops here, on any backend
      const r = await it.next();
      if (r.done) {
        const tail = decoder?.flush() ?? '';
        text += tail;
        const result = r.value;
        return {
          ...result,
          text,
          prompts,
          promptTokens: [...positiveIds],
          tokensPerSecond: result.steps / Math.max(result.decodeSeconds + result.prefillSeconds, 1e-9),
        };
      }
      const ev = r.value;
      const piece = ev.stop || !decoder ? '' : decoder.push(ev.token);
      text += piece;
      yield { step: ev.step, token: ev.token, text: piece, stop: ev.stop, trace: ev.trace };
    }
  }

  /** Runs a question to the end. */
  async ask(question: string, opts: AskOptions = {}): Promise<Answer> {
    return drain(this.stream(question, opts));
  }

  async askIds(positiveIds: readonly number[], reverseIds: readonly (readonly number[])[], opts: AskOptions = {}): Promise<Answer> {
    return drain(this.streamIds(positiveIds, reverseIds, opts));
  }
}

async function drain<T, R>(it: AsyncGenerator<T, R>): Promise<R> {
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
