/**
 * The page: fills the form (from the checkpoint's reference.json when it has one, as the fixtures do),
 * runs the check of rose-web.ts on a click, and shows the adapter, the tokens and a logits summary.
 * It also exposes the API as window.roseWeb for the browser test (test/web/browser.test.ts).
 * `?run=1` runs at once; `?checkpoint=URL` picks the folder.
 */
import { adapterReport, runCheck, runChecks, summarize, type AdapterReport, type CheckResult, type RoseWebApi } from './rose-web.ts';

declare global {
  interface Window {
    roseWeb: RoseWebApi;
  }
}

window.roseWeb = { adapterReport, runCheck, runChecks };

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const ids = (s: string): number[] =>
  s
    .split(/[\s,]+/)
    .filter((x) => x !== '')
    .map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 0) throw new Error(`not a token id: ${JSON.stringify(x)}`);
      return n;
    });

/** The adapter report, one field a line. */
const showReport = (r: AdapterReport): string =>
  Object.entries(r)
    .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`)
    .join('\n');

const fmt = (x: number): string => x.toFixed(4);

function show(r: CheckResult, ms: number): string {
  const V = r.vocab;
  const run = r.runs[0];
  const lines = [`tokens (ROSE, greedy, α=${run.alpha}): [${run.tokens.join(', ')}]`, ''];
  r.prefill.forEach((row, b) => {
    const positions = row.length / V;
    const last = summarize(row.slice((positions - 1) * V));
    const whole = summarize(row, 0);
    lines.push(
      `prefill row ${b} (${b === 0 ? 'positive' : 'reverse'}), ${positions} real positions × ${V}: ` +
        `min ${fmt(whole.min)}, max ${fmt(whole.max)}, mean ${fmt(whole.mean)}`,
      `  last position top-5: ${last.top.map((t) => `${t.id} (${fmt(t.logit)})`).join(', ')}`,
    );
  });
  const steps = run.decodePos.length / V;
  lines.push('', `decode: ${steps} steps; argmax of each row's last-position logits per step:`);
  for (let s = 0; s < steps; s++) {
    const p = summarize(run.decodePos.slice(s * V, (s + 1) * V), 1);
    const q = summarize(run.decodeRev.slice(s * V, (s + 1) * V), 1);
    lines.push(
      `  step ${String(s).padStart(2)}: token ${String(run.tokens[s]).padStart(5)}; argmax pos ${p.top[0].id} (${fmt(p.top[0].logit)}), rev ${q.top[0].id} (${fmt(q.top[0].logit)})`,
    );
  }
  const m = r.ms;
  lines.push(
    '',
    `time: fetch ${m.fetch.toFixed(0)} ms, upload ${m.upload.toFixed(0)} ms, ROSE ${m.decode.toFixed(0)} ms, replay ${m.replay.toFixed(0)} ms, ` +
      `decisions ${m.contrast.toFixed(0)} ms; total ${ms.toFixed(0)} ms`,
  );
  return lines.join('\n');
}

/** Defaults for the prompts from the checkpoint's reference.json (the test fixtures have one). */
async function fillFromReference(checkpoint: string): Promise<void> {
  try {
    const res = await fetch(new URL('reference.json', new URL(checkpoint.endsWith('/') ? checkpoint : `${checkpoint}/`, location.href)), {
      cache: 'no-store',
    });
    if (!res.ok) return;
    const ref = (await res.json()) as { rows?: { tokens: number[] }[]; pos_row?: number; rev_row?: number };
    if (!ref.rows) return;
    $<HTMLInputElement>('pos').value = ref.rows[ref.pos_row ?? 0].tokens.join(' ');
    $<HTMLInputElement>('rev').value = ref.rows[ref.rev_row ?? 1].tokens.join(' ');
  } catch {
    // no reference: the user types the ids
  }
}

async function run(): Promise<void> {
  const out = $('out');
  const button = $<HTMLButtonElement>('run');
  out.classList.remove('err');
  out.textContent = 'running…';
  button.disabled = true;
  const t0 = performance.now();
  try {
    const result = await runCheck({
      checkpoint: $<HTMLInputElement>('checkpoint').value,
      rows: [ids($<HTMLInputElement>('pos').value), ids($<HTMLInputElement>('rev').value)],
      runs: [{ alpha: Number($<HTMLInputElement>('alpha').value), steps: Number($<HTMLInputElement>('steps').value) }],
    });
    $('adapter').textContent = `${result.adapter}\n${showReport(result.adapterReport)}`;
    out.textContent = show(result, performance.now() - t0);
  } catch (e) {
    out.classList.add('err');
    const err = e as Error & { hint?: string };
    out.textContent = `${err.name}: ${err.message}${err.hint ? `\nhint: ${err.hint}` : ''}`;
  } finally {
    button.disabled = false;
  }
}

async function init(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const checkpoint = params.get('checkpoint');
  if (checkpoint) $<HTMLInputElement>('checkpoint').value = checkpoint;
  $('form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void run();
  });
  $('checkpoint').addEventListener('change', () => void fillFromReference($<HTMLInputElement>('checkpoint').value));
  const [report] = await Promise.all([adapterReport(), fillFromReference($<HTMLInputElement>('checkpoint').value)]);
  $('adapter').textContent = showReport(report);
  if (params.get('run') === '1') await run();
}

void init();
