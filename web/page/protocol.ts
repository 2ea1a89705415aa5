/**
 * The messages between the page (main.ts, the UI) and its Web Worker (worker.ts, which owns the model
 * and runs every step of decoding, on WebGPU or on the CPU twins), so the page stays responsive.
 */
import type { TracedStep, TraceJson } from '../../src/api.ts';

/** The page's settings for one answer. */
export interface Settings {
  alpha: number;
  /** A built-in reverse prompt, or the user's own text. */
  reverse: 'manual' | 'opposite' | 'randwords' | { text: string };
  beta: number;
  maxNewTokens: number;
  template: 'paper' | 'chat';
}

export type ModelSource = { kind: 'url'; url: string; name: string } | { kind: 'files'; files: File[]; name: string };

export type BackendChoice = 'webgpu' | 'cpu';

export type ToWorker =
  | { type: 'load'; source: ModelSource; backend: BackendChoice }
  /** What the model would read for this question: the prompts in full, with the template applied. */
  | { type: 'describe'; id: number; question: string; settings: Settings }
  | { type: 'run'; runId: number; question: string; settings: Settings }
  | { type: 'stop' };

export type Side = 'plain' | 'rose';

export interface ModelInfo {
  name: string;
  parameters: number;
  layers: number;
  hidden: number;
  vocab: number;
  context: number;
  dtype: string | null;
  hasChatTemplate: boolean;
}

export interface BackendInfo {
  name: 'cpu' | 'webgpu';
  /** In a few words: 'webgpu (swiftshader, software)', 'cpu (1 thread)'. */
  label: string;
  software: boolean;
  /** Why this is not the backend asked for (no WebGPU here), as a sentence; absent when it is. */
  note?: string;
}

/** A failure, as the page shows it: a sentence a student understands, then the details. */
export interface ShownError {
  /** The RoseError code, or 'INTERNAL' for anything else. */
  code: string;
  sentence: string;
  detail: string;
}

export type FromWorker =
  | { type: 'progress'; what: string }
  | { type: 'ready'; model: ModelInfo; backend: BackendInfo }
  | {
      type: 'described';
      id: number;
      positive: { text: string; label: string };
      reverse: { text: string; label: string };
      /** The exact text each row was tokenized from, and its length in tokens: [positive, reverse]. */
      inputs: { text: string; tokens: number }[];
      notes: string[];
      /** Set when the settings make ROSE degenerate (α ≥ 1 without β). */
      warning: string | null;
    }
  | {
      type: 'token';
      runId: number;
      side: Side;
      step: number;
      token: number;
      /** The text this token completes ('' while a multi-byte character is incomplete, and for the stop token). */
      text: string;
      /** This token ends the turn (it is not part of the answer). */
      stop: boolean;
      /** ROSE only: this step as `rose generate --trace` writes it. */
      trace?: TracedStep;
    }
  | {
      type: 'done';
      runId: number;
      side: Side;
      steps: number;
      tokens: number[];
      text: string;
      seconds: number;
      /** It ended on an end-of-turn token (else at max new tokens). */
      endOfTurn: boolean;
      /** The user stopped it. */
      stopped: boolean;
    }
  /** ROSE's whole trace, the JSON `rose generate --trace` writes, once its answer is done. */
  | { type: 'trace'; runId: number; trace: TraceJson }
  /** `during` says where the page shows it: beside the model (load), or beside the answers (describe, run). */
  | { type: 'error'; during: 'load' | 'describe' | 'run'; runId?: number; error: ShownError };
