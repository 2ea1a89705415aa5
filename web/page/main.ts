/**
 * The teaching page's UI. Everything that computes runs in the Web Worker (worker.ts); this file only
 * sends it the question and settings, and draws what comes back: the two answers as they stream, the
 * marks on the steps ROSE changed, and the step view's charts (fed by the trace JSON that
 * `rose generate --trace` writes).
 */
import type { TracedStep, TraceJson } from '../../src/api.ts';
import { barChart, visibleToken } from './charts.ts';
import type { BackendChoice, BackendInfo, FromWorker, ModelInfo, ModelSource, Settings, Side, ToWorker } from './protocol.ts';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
};

const ui = {
  status: $('status'),
  backendNote: $('backend-note'),
  folder: $<HTMLInputElement>('folder'),
  modelUrl: $<HTMLInputElement>('model-url'),
  loadUrl: $<HTMLButtonElement>('load-url'),
  loadDefault: $<HTMLButtonElement>('load-default'),
  backend: $<HTMLSelectElement>('backend'),
  question: $<HTMLTextAreaElement>('question'),
  samples: $('samples'),
  alpha: $<HTMLInputElement>('alpha'),
  alphaValue: $<HTMLOutputElement>('alpha-value'),
  reverse: $<HTMLSelectElement>('reverse'),
  reverseText: $<HTMLTextAreaElement>('reverse-text'),
  reverseLabel: $('reverse-label'),
  beta: $<HTMLInputElement>('beta'),
  maxNew: $<HTMLInputElement>('max-new'),
  template: $<HTMLSelectElement>('template'),
  warning: $('warning'),
  run: $<HTMLButtonElement>('run'),
  stop: $<HTMLButtonElement>('stop'),
  error: $('error'),
  modelError: $('model-error'),
  roseSub: $('rose-sub'),
  step: $('step'),
  stepTitle: $('step-title'),
  stepSummary: $('step-summary'),
  charts: { pos: $('chart-pos'), rev: $('chart-rev'), contrast: $('chart-contrast') },
  traceDownload: $<HTMLAnchorElement>('trace-download'),
};
const answers: Record<Side, HTMLElement> = { plain: $('plain'), rose: $('rose') };

/** rose-micro, served beside the page (vite.config.ts copies weights/rose-micro there). */
const DEFAULT_MODEL: ModelSource = { kind: 'url', url: new URL('models/rose-micro/', location.href).href, name: 'rose-micro' };
const PLACEHOLDER_QUESTION = 'How do I bake bread?';

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
const send = (m: ToWorker) => worker.postMessage(m);

let model: ModelInfo | undefined;
let currentSource: ModelSource = DEFAULT_MODEL;
let backend: BackendInfo | undefined;
let runId = 0;
let running = false;
/** The settings of the answer on screen (the step view explains with them). */
let runSettings: Settings | undefined;
/** ROSE's steps as they stream; replaced by the whole trace when the answer is done. */
const liveSteps = new Map<number, TracedStep>();
let trace: TraceJson | undefined;
let pinnedStep: number | undefined;
let describeId = 0;

// --- settings ------------------------------------------------------------------------------------

function settings(): Settings {
  const kind = ui.reverse.value;
  return {
    alpha: ui.alpha.valueAsNumber,
    reverse: kind === 'custom' ? { text: ui.reverseText.value } : (kind as 'manual' | 'opposite' | 'randwords'),
    beta: ui.beta.value === '' ? Number.NaN : Number(ui.beta.value),
    maxNewTokens: ui.maxNew.value === '' ? Number.NaN : Number(ui.maxNew.value),
    template: ui.template.value as 'paper' | 'chat',
  };
}

/** A number for reading: a real minus sign, as in the formula. */
const fmt = (x: number, digits = 2) => x.toFixed(digits).replace(/^-/, '−');

/** Asks the worker for the prompts' texts under the current settings (shown in full, and in the reverse box). */
let describeTimer: ReturnType<typeof setTimeout> | undefined;
function describeSoon(): void {
  ui.alphaValue.value = fmt(ui.alpha.valueAsNumber);
  clearTimeout(describeTimer);
  describeTimer = setTimeout(() => {
    if (!model) return;
    send({ type: 'describe', id: ++describeId, question: ui.question.value.trim() || PLACEHOLDER_QUESTION, settings: settings() });
  }, 120);
}

function showDescription(m: Extract<FromWorker, { type: 'described' }>): void {
  if (m.id !== describeId) return;
  if (ui.reverse.value !== 'custom') ui.reverseText.value = m.reverse.text;
  ui.reverseLabel.textContent = m.reverse.label;
  $('positive-label').textContent = m.positive.label;
  $('positive-text').textContent = m.positive.text;
  $('reverse-label-2').textContent = m.reverse.label;
  $('reverse-text-2').textContent = m.reverse.text;
  $('input-pos').textContent = m.inputs[0].text;
  $('input-pos-tokens').textContent = String(m.inputs[0].tokens);
  $('input-rev').textContent = m.inputs[1].text;
  $('input-rev-tokens').textContent = String(m.inputs[1].tokens);
  $('input-notes').textContent = m.notes.join(' ');
  ui.warning.hidden = !m.warning;
  ui.warning.textContent = m.warning ? `Careful: ${m.warning.replace('add --beta 0.1', 'set β to 0.1')}.` : '';
}

// --- the model -----------------------------------------------------------------------------------

function load(source: ModelSource): void {
  currentSource = source;
  model = undefined;
  ui.run.disabled = true;
  hideError(ui.modelError);
  hideError(ui.error);
  ui.backendNote.hidden = true;
  ui.status.textContent = `Loading ${source.name}…`;
  send({ type: 'load', source, backend: ui.backend.value as BackendChoice });
}

function onReady(m: ModelInfo, b: BackendInfo): void {
  model = m;
  backend = b;
  const params = m.parameters >= 1e6 ? `${fmt(m.parameters / 1e6)}M` : `${Math.round(m.parameters / 1e3)}K`;
  ui.status.innerHTML = '';
  ui.status.append(
    Object.assign(document.createElement('b'), { textContent: m.name }),
    ` · ${params} parameters · ${m.layers} layers · vocabulary ${m.vocab} · runs on `,
    Object.assign(document.createElement('b'), { textContent: backendWords(b), id: 'backend-label' }),
  );
  const notes = [
    b.note,
    b.software ? "This browser's WebGPU adapter is a software one: the GPU is emulated on the CPU, so it is slow." : '',
  ]
    .filter((n) => n)
    .join(' ');
  ui.backendNote.hidden = !notes;
  ui.backendNote.textContent = notes;
  if (m.name === 'rose-micro') $('micro-params').textContent = params;
  ui.template.value = m.name === DEFAULT_MODEL.name || !m.hasChatTemplate ? 'paper' : 'chat';
  ui.run.disabled = running;
  describeSoon();
}

const backendWords = (b: BackendInfo): string =>
  b.name === 'cpu' ? `the CPU (TypeScript, in a Web Worker)` : `WebGPU (${b.label.replace(/^webgpu \((.*)\)$/, '$1')})`;

// --- answers -------------------------------------------------------------------------------------

function startRun(): void {
  const question = ui.question.value.trim();
  if (!question) {
    showError(ui.error, { code: 'INPUT', sentence: 'Type a question first.', detail: '' });
    return;
  }
  if (!model) return;
  hideError(ui.error);
  runSettings = settings();
  runId++;
  running = true;
  liveSteps.clear();
  trace = undefined;
  pinnedStep = undefined;
  ui.step.hidden = true;
  ui.traceDownload.hidden = true;
  const rev = ui.reverse.options[ui.reverse.selectedIndex].text.replace(/ \(.*\)$/, '');
  ui.roseSub.textContent = `α = ${fmt(runSettings.alpha)}, ${rev}${runSettings.beta > 0 ? `, β = ${runSettings.beta}` : ''}, greedy`;
  for (const side of ['plain', 'rose'] as const) {
    answers[side].dataset.state = 'running';
    answers[side].querySelector('.tokens')!.replaceChildren();
    answers[side].querySelector('.stats')!.textContent = '…';
  }
  ui.run.disabled = true;
  ui.stop.disabled = false;
  send({ type: 'run', runId, question, settings: runSettings });
}

function addToken(m: Extract<FromWorker, { type: 'token' }>): void {
  const span = document.createElement('span');
  span.className = 'tok';
  if (m.stop) {
    span.classList.add('stop');
    span.textContent = 'end of turn';
    span.title = `token ${m.token} ends the turn; it is not part of the answer`;
  } else span.textContent = m.text;
  if (m.side === 'rose') {
    span.dataset.step = String(m.step);
    span.tabIndex = 0;
    if (m.trace) {
      liveSteps.set(m.step, m.trace);
      if (m.trace.changed) span.classList.add('changed');
    }
  }
  answers[m.side].querySelector('.tokens')!.append(span);
}

function finish(m: Extract<FromWorker, { type: 'done' }>): void {
  const el = answers[m.side];
  // The decoder may hold back the last bytes of a character until the end: show them too.
  const box = el.querySelector('.tokens')!;
  const shown = Array.from(box.querySelectorAll('.tok:not(.stop)'))
    .map((t) => t.textContent)
    .join('');
  const tail = m.text.slice(shown.length);
  if (tail && m.text.startsWith(shown)) {
    const span = Object.assign(document.createElement('span'), { className: 'tail', textContent: tail });
    const stop = box.querySelector('.tok.stop');
    if (stop) stop.before(span);
    else box.append(span);
  }
  el.dataset.state = m.stopped ? 'stopped' : 'done';
  el.dataset.tokens = m.tokens.join(',');
  const end = m.endOfTurn ? 'then end of turn' : 'the limit';
  const speed = m.stopped ? 'stopped' : `${m.tokens.length} tokens (${end}) · ${fmt(m.steps / Math.max(m.seconds, 1e-9), 1)} tokens/s`;
  el.querySelector('.stats')!.textContent = `${speed} · on ${backend ? backendWords(backend) : '?'}`;
  if (['plain', 'rose'].every((s) => answers[s as Side].dataset.state !== 'running')) endRun();
}

function endRun(): void {
  running = false;
  ui.run.disabled = !model;
  ui.stop.disabled = true;
}

function onTrace(t: TraceJson): void {
  trace = t;
  // Open the step view on the first step ROSE changed, unless the student is already looking at one.
  if (ui.step.hidden && t.trace.length) showStep((t.trace.find((s) => s.changed) ?? t.trace[0]).step);
  if (ui.traceDownload.href) URL.revokeObjectURL(ui.traceDownload.href);
  ui.traceDownload.href = URL.createObjectURL(new Blob([`${JSON.stringify(t, null, 2)}\n`], { type: 'application/json' }));
  ui.traceDownload.hidden = false;
}

// --- the step view -------------------------------------------------------------------------------

const quote = (text: string | null, id: number) => `“${visibleToken(text, id)}”`;

function showStep(step: number): void {
  const s = trace?.trace[step] ?? liveSteps.get(step);
  if (!s || !runSettings) return;
  for (const t of Array.from(answers.rose.querySelectorAll('.tok.selected'))) t.classList.remove('selected');
  answers.rose.querySelector(`.tok[data-step="${step}"]`)?.classList.add('selected');
  ui.step.hidden = false;
  ui.step.dataset.step = String(step);
  ui.stepTitle.textContent = `Step ${step + 1}: ROSE chose ${quote(s.text, s.token)}${
    s.changed
      ? `, where plain greedy decoding would have chosen ${quote(s.plainText, s.plainToken)}`
      : ', as plain greedy decoding would have'
  }`;
  ui.stepSummary.textContent = explain(s, runSettings);
  const marks = { chosen: s.token, plain: s.plainToken };
  ui.charts.pos.replaceChildren(barChart(s.pPos, marks, 'top tokens under the positive prompt'));
  ui.charts.rev.replaceChildren(barChart(s.pRev[0], marks, 'top tokens under the reverse prompt'));
  ui.charts.contrast.replaceChildren(barChart(s.contrast, marks, 'top tokens of the contrast'));
}

/** The step in numbers: z of ROSE's token and of plain greedy's, when both their probabilities are in the lists. */
function explain(s: TracedStep, set: Settings): string {
  const p = (list: readonly { id: number; p: number }[], id: number) => list.find((e) => e.id === id)?.p;
  const z = (id: number, text: string | null): string => {
    const pos = p(s.pPos, id);
    const rev = p(s.pRev[0], id);
    const name = quote(text, id);
    if (pos === undefined || rev === undefined) {
      const which = pos === undefined ? 'positive' : 'reverse';
      return `${name} is not among the top ${s.pPos.length} tokens under the ${which} prompt`;
    }
    return `z(${name}) = log ${fmt(pos, 3)} − ${fmt(set.alpha)} · log ${fmt(rev, 3)} = ${fmt(Math.log(pos) - set.alpha * Math.log(rev))}`;
  };
  const mask = set.beta > 0 ? ` (β = ${set.beta} removes tokens with p_pos < ${set.beta} · max p_pos first)` : '';
  if (!s.changed) return `${z(s.token, s.text)}: the positive prompt's favourite also has the best score${mask}.`;
  const [plain, chosen] = [quote(s.plainText, s.plainToken), quote(s.text, s.token)];
  return `${z(s.plainToken, s.plainText)}, but ${z(s.token, s.text)}: the reverse prompt favours ${plain} over ${chosen} more than the positive prompt does, so ROSE takes ${chosen}${mask}.`;
}

function onTokenPointer(ev: Event, pin: boolean): void {
  const tok = (ev.target as HTMLElement).closest<HTMLElement>('.tok[data-step]');
  if (!tok) return;
  const step = Number(tok.dataset.step);
  if (pin) pinnedStep = step;
  else if (pinnedStep !== undefined) return;
  showStep(step);
}

// --- errors --------------------------------------------------------------------------------------

/** Shows an error in `box` (beside the model, or beside the answers) and brings it into view. */
function showError(box: HTMLElement, e: { code: string; sentence: string; detail: string }): void {
  box.hidden = false;
  box.dataset.code = e.code;
  box.replaceChildren(Object.assign(document.createElement('p'), { textContent: e.sentence }));
  if (e.detail) box.append(Object.assign(document.createElement('p'), { className: 'small', textContent: e.detail }));
  box.scrollIntoView({ block: 'nearest' });
}

function hideError(box: HTMLElement): void {
  box.hidden = true;
  box.replaceChildren();
}

// --- samples -------------------------------------------------------------------------------------

const CLASSES: readonly [string, string][] = [
  ['subtle', 'subtly harmful'],
  ['overt', 'overtly harmful'],
  ['benign', 'harmless'],
];

/** Two questions of each class from rose-micro's held-out set (questions it never saw in training). */
async function showSamples(): Promise<void> {
  let lines: { prompt: string; class: string }[];
  try {
    const res = await fetch(`${(DEFAULT_MODEL as { url: string }).url}heldout.jsonl`);
    if (!res.ok) return;
    lines = (await res.text())
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
  } catch {
    return; // no samples: the question box still works
  }
  ui.samples.replaceChildren(Object.assign(document.createElement('span'), { textContent: 'Try one of rose-micro’s held-out questions:' }));
  for (const [cls, words] of CLASSES) {
    for (const q of lines.filter((l) => l.class === cls).slice(0, 2)) {
      const b = Object.assign(document.createElement('button'), { type: 'button', className: `sample ${cls}`, title: words });
      b.append(Object.assign(document.createElement('span'), { className: 'chip', textContent: words }), ` ${q.prompt}`);
      b.addEventListener('click', () => {
        ui.question.value = q.prompt;
        describeSoon();
        if (!ui.run.disabled) startRun();
      });
      ui.samples.append(b);
    }
  }
}

// --- wiring --------------------------------------------------------------------------------------

worker.onmessage = (ev: MessageEvent<FromWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case 'progress':
      ui.status.textContent = m.what;
      break;
    case 'ready':
      onReady(m.model, m.backend);
      break;
    case 'described':
      showDescription(m);
      break;
    case 'token':
      if (m.runId === runId) addToken(m);
      break;
    case 'done':
      if (m.runId === runId) finish(m);
      break;
    case 'trace':
      if (m.runId === runId) onTrace(m.trace);
      break;
    case 'error':
      showError(m.during === 'load' ? ui.modelError : ui.error, m.error);
      if (m.runId === undefined || m.runId === runId) {
        for (const side of ['plain', 'rose'] as const) if (answers[side].dataset.state === 'running') answers[side].dataset.state = 'error';
        endRun();
      }
      if (!model) ui.status.textContent = 'No model loaded.';
      break;
  }
};
worker.onerror = (ev) =>
  showError(ui.modelError, { code: 'INTERNAL', sentence: 'The page’s background thread failed to start.', detail: ev.message });

ui.run.addEventListener('click', startRun);
ui.stop.addEventListener('click', () => send({ type: 'stop' }));
ui.question.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey) && !ui.run.disabled) startRun();
});
for (const input of [ui.question, ui.alpha, ui.beta, ui.maxNew, ui.template, ui.reverse]) input.addEventListener('input', describeSoon);
ui.reverseText.addEventListener('input', () => {
  ui.reverse.value = 'custom';
  describeSoon();
});
ui.reverse.addEventListener('change', () => {
  if (ui.reverse.value === 'custom') ui.reverseText.focus();
});
const roseTokens = answers.rose.querySelector('.tokens')!;
roseTokens.addEventListener('mouseover', (ev) => onTokenPointer(ev, false));
roseTokens.addEventListener('focusin', (ev) => onTokenPointer(ev, false));
roseTokens.addEventListener('click', (ev) => onTokenPointer(ev, true));
ui.folder.addEventListener('change', () => {
  const all = Array.from(ui.folder.files ?? []);
  if (all.length === 0) return;
  // Only the files directly in the picked folder; webkitRelativePath is "folder/name".
  const top = all.filter((f) => f.webkitRelativePath.split('/').length <= 2);
  const name = all[0].webkitRelativePath.split('/')[0] || 'the picked files';
  load({ kind: 'files', files: top.length ? top : all, name });
});
ui.loadUrl.addEventListener('click', () => {
  const url = ui.modelUrl.value.trim();
  if (!url) return;
  const name = new URL(url, location.href).pathname
    .replace(/\/resolve\/[^/]+\/?$/, '')
    .replace(/\/$/, '')
    .split('/')
    .slice(-2)
    .join('/');
  load({ kind: 'url', url: new URL(url, location.href).href, name: name || url });
});
ui.loadDefault.addEventListener('click', () => load(DEFAULT_MODEL));
ui.backend.addEventListener('change', () => load(currentSource));

const params = new URLSearchParams(location.search);
if (params.get('backend') === 'cpu') ui.backend.value = 'cpu';
const fromUrl = params.get('model');
if (fromUrl) {
  ui.modelUrl.value = fromUrl;
  ui.loadUrl.click();
} else load(DEFAULT_MODEL);
void showSamples();
