/**
 * The page's Web Worker: it owns the model (a Rose session from the project's own api.ts, on WebGPU
 * or on the CPU twins) and decodes plain and ROSE answers side by side, posting every token to the
 * page as it is chosen. All the work happens here, so the page stays responsive on either backend.
 *
 * Plain and ROSE decode in lock step, one token of each in turn, exactly as `rose generate --compare`
 * does on a terminal (their KV caches are separate); each side's tokens/s counts only its own time.
 */
import { blobFiles, RoseError, Rose, urlFiles, degenerateContrastWarning, type AskOptions, type StreamPiece } from '../../src/api.ts';
import type { BackendChoice, FromWorker, ModelSource, Settings, Side, ToWorker } from './protocol.ts';
import { noWebGpuNote, shownError } from './sentences.ts';

/** The worker's global scope, typed by hand (the project's tsconfig has the DOM lib, not WebWorker). */
const scope = globalThis as unknown as {
  postMessage(message: FromWorker): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
};
const post = (m: FromWorker) => scope.postMessage(m);

/** How many entries of p_pos, p_rev and the contrast each step keeps for the step view. */
const TRACE_TOP_K = 8;

let rose: Rose | undefined;
let modelName = '';
/** The answer being decoded, stopped by the page's Stop button or by a new question. */
let running: { controller: AbortController; done: Promise<void> } | undefined;
/** Messages wait for the one before them (a run may not start while a model loads). */
let queue: Promise<void> = Promise.resolve();

scope.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === 'stop') {
    running?.controller.abort(new DOMException('stopped', 'AbortError'));
    return;
  }
  if (m.type === 'run' || m.type === 'load') running?.controller.abort(new DOMException('stopped', 'AbortError'));
  const during = m.type === 'load' ? 'load' : m.type === 'describe' ? 'describe' : 'run';
  queue = queue.then(() => handle(m)).catch((e) => post({ type: 'error', during, error: shownError(e, during) }));
};

async function handle(m: ToWorker): Promise<void> {
  if (m.type === 'load') return load(m.source, m.backend);
  if (m.type === 'describe') return describe(m.id, m.question, m.settings);
  if (m.type === 'run') {
    const controller = new AbortController();
    const done = run(m.runId, m.question, m.settings, controller.signal).catch((e) => {
      post({ type: 'error', during: 'run', runId: m.runId, error: shownError(e, 'run') });
    });
    running = { controller, done };
    await done;
    running = undefined;
  }
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function load(source: ModelSource, backend: BackendChoice): Promise<void> {
  rose?.close();
  rose = undefined;
  const onBytes = (name: string, loaded: number, total: number | undefined) =>
    post({ type: 'progress', what: `downloading ${name}: ${mb(loaded)}${total ? ` of ${mb(total)}` : ''}` });
  const files = source.kind === 'url' ? urlFiles(source.url, { onProgress: onBytes }) : blobFiles(source.files, source.name);
  const onProgress = (done: number, total: number) => post({ type: 'progress', what: `loading the weights: ${done} of ${total} tensors` });
  post({ type: 'progress', what: `opening ${source.name}…` });
  let note: string | undefined;
  if (backend === 'webgpu') {
    try {
      rose = await Rose.open(files, { backend: 'webgpu', onProgress });
    } catch (e) {
      // No WebGPU here (no navigator.gpu, no adapter): the CPU twins, with a visible note. Any other
      // failure (a bad file, a model too big) is the model's, and is shown as it is.
      if (!(e instanceof RoseError && e.code === 'BACKEND')) throw e;
      note = noWebGpuNote(e);
    }
  }
  rose ??= await Rose.open(files, { backend: 'cpu', onProgress });
  modelName = source.name;
  const c = rose.config;
  const summary = rose.backendSummary;
  post({
    type: 'ready',
    model: {
      name: source.name,
      parameters: rose.parameters,
      layers: c.numHiddenLayers,
      hidden: c.hiddenSize,
      vocab: c.vocabSize,
      context: c.maxPositionEmbeddings,
      dtype: c.torchDtype,
      hasChatTemplate: !!rose.tokenizer?.chatTemplate,
    },
    backend: { name: summary.name, label: summary.label, software: summary.adapter?.software ?? false, note },
  });
}

function askOptions(s: Settings): AskOptions {
  return { alpha: s.alpha, reverse: s.reverse, beta: s.beta, maxNewTokens: s.maxNewTokens, template: s.template };
}

function session(): Rose {
  if (!rose) throw new RoseError('INPUT', `the model ${modelName || ''} is not loaded`, 'load a model first');
  return rose;
}

async function describe(id: number, question: string, s: Settings): Promise<void> {
  const r = session();
  const p = r.prepare(question, askOptions(s));
  post({
    type: 'described',
    id,
    positive: { text: p.positive.text, label: p.positive.label },
    reverse: { text: p.reverse[0].text, label: p.reverse[0].label },
    inputs: p.texts.map((text, i) => ({ text, tokens: p.rows[i].length })),
    notes: p.notes,
    warning: degenerateContrastWarning([s.alpha], s.beta),
  });
}

/** Lets the worker take its messages (Stop) between steps, without a timer's clamping. */
const channel = new MessageChannel();
const yieldToEvents = () =>
  new Promise<void>((resolve) => {
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });

async function run(runId: number, question: string, s: Settings, signal: AbortSignal): Promise<void> {
  const r = session();
  const opts: AskOptions = { ...askOptions(s), signal };
  const sides = (
    [
      ['plain', r.stream(question, { ...opts, plain: true })],
      ['rose', r.stream(question, { ...opts, trace: { topK: TRACE_TOP_K } })],
    ] as const
  ).map(([side, it]) => ({ side: side as Side, it, seconds: 0, done: false }));
  try {
    while (sides.some((x) => !x.done)) {
      for (const x of sides) {
        if (x.done) continue;
        const t = performance.now();
        const next = await x.it.next();
        x.seconds += (performance.now() - t) / 1000;
        if (next.done) {
          x.done = true;
          const a = next.value;
          const endOfTurn = a.stopToken !== null;
          post({
            type: 'done',
            runId,
            side: x.side,
            steps: a.steps,
            tokens: a.tokens,
            text: a.text,
            seconds: x.seconds,
            endOfTurn,
            stopped: false,
          });
          if (x.side === 'rose') post({ type: 'trace', runId, trace: r.traceJson(a, { alpha: s.alpha, beta: s.beta }) });
        } else postToken(r, runId, x.side, next.value);
      }
      await yieldToEvents();
    }
  } catch (e) {
    if (!signal.aborted) throw e;
    for (const x of sides.filter((y) => !y.done)) {
      post({ type: 'done', runId, side: x.side, steps: -1, tokens: [], text: '', seconds: x.seconds, endOfTurn: false, stopped: true });
    }
  } finally {
    await Promise.all(sides.map((x) => x.it.return(undefined as never).catch(() => {})));
  }
}

function postToken(r: Rose, runId: number, side: Side, p: StreamPiece): void {
  post({
    type: 'token',
    runId,
    side,
    step: p.step,
    token: p.token,
    text: p.text,
    stop: p.stop,
    ...(p.trace ? { trace: r.traceStep(p.trace) } : {}),
  });
}
