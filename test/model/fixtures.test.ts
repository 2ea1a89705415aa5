/**
 * Our forward pass against Hugging Face transformers, on every fixture: every real position of both
 * rows, in the left-padded batch of two and each row alone, then ROSE's greedy steps through the KV
 * cache. The fixtures were computed by transformers 4.46.3 in float32 (test/fixtures/README.md).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/kernels/backend.ts';
import { loadLlama } from '../../src/model/load.ts';
import type { Llama } from '../../src/model/llama.ts';
import { argmax, listFixtures, loadFixture, maxAbsDiff, PROBS_ROUNDING, scoreErrorRange, type Fixture } from '../helpers/fixtures.ts';
import { backendLabel, backendsUnderTest } from '../kernels/backends.ts';

/**
 * Tolerance on logits and contrast scores: 1e-4 max abs. Every correct float32 evaluation order the
 * fixture generator tried lands within 2.1e-5 of transformers on logits of magnitude ≤ 15, so 1e-4
 * leaves 5× headroom for our own order; a real bug (rms_norm_eps 1e-5 ↔ 1e-6 in the tied fixture)
 * shows up at 9.4e-4, which this bar still catches. Probabilities: |Δp| ≤ ½(1+α)·max|Δlogit|, so the
 * same bar serves. (docs/llama-semantics.md, §9.)
 */
const LOGIT_TOL = 1e-4;

// The same test body on every backend (CPU reference, and WebGPU on whatever adapter is present:
// llvmpipe in CI). One backend instance per file, destroyed at the end so Node can exit.
const backends = await backendsUnderTest();
afterAll(() => {
  for (const b of backends) b.destroy();
});

export const measured: Record<string, Record<string, number>> = {};
const record = (fixture: string, what: string, value: number) =>
  ((measured[fixture] ??= {})[what] = Math.max(measured[fixture][what] ?? 0, value));

function describeFixturesOn(backend: Backend) {
  describe.each(listFixtures())(`${backendLabel(backend)}: fixture %s`, (name) => {
    const fx: Fixture = loadFixture(name);
    const model: Llama = loadLlama(fx.dir, backend);
    const V = model.config.vocabSize;

    /** Real positions of each row from an all-positions forward over a left-padded batch. */
    async function prefillRows(rows: number[][]): Promise<Float32Array[]> {
      const cache = model.newKvCache(rows.length, Math.max(...rows.map((r) => r.length)));
      const { T, logits } = model.prefill(cache, rows, true);
      const all = await backend.read(logits); // (B·T, V)
      return rows.map((r, b) => all.slice((b * T + T - r.length) * V, (b + 1) * T * V));
    }

    function expectLogitsMatch(got: Float32Array, want: { data: Float32Array; shape: number[] }, what: string) {
      expect(got.length).toBe(want.data.length);
      const diff = maxAbsDiff(got, want.data);
      record(`${backendLabel(backend)} ${name}`, what, diff);
      expect(diff, `${what}: max |Δ| vs transformers`).toBeLessThanOrEqual(LOGIT_TOL);
      for (let t = 0; t < want.shape[0]; t++) {
        expect(argmax(got, t * V, (t + 1) * V), `${what}: greedy argmax at position ${t}`).toBe(argmax(want.data, t * V, (t + 1) * V));
      }
    }

    it('prefill of the left-padded batch of two matches, every position of both rows', async () => {
      const rows = fx.ref.rows.map((r) => r.tokens);
      const got = await prefillRows(rows);
      expectLogitsMatch(got[0], fx.tensor(fx.ref.prefill.tensors.batched_row0), 'prefill batched row 0');
      expectLogitsMatch(got[1], fx.tensor(fx.ref.prefill.tensors.batched_row1), 'prefill batched row 1');
    });

    it('each row run alone matches the unpadded reference', async () => {
      for (const r of fx.ref.rows) {
        const [got] = await prefillRows([r.tokens]);
        const key = r.row === 0 ? 'single_row0' : 'single_row1';
        expectLogitsMatch(got, fx.tensor(fx.ref.prefill.tensors[key]), `prefill single row ${r.row}`);
      }
    });

    it.each(fx.ref.rose.runs.map((run) => [run.alpha, run] as const))(
      'ROSE greedy, alpha %s: logits, scores, probs and tokens through the KV cache',
      async (_alpha, run) => {
        const pos = fx.ref.rows[fx.ref.pos_row].tokens;
        const rev = fx.ref.rows[fx.ref.rev_row].tokens;
        const cache = model.newKvCache(2, Math.max(pos.length, rev.length) + run.steps);
        let logits = model.prefill(cache, [pos, rev]).logits; // (2, V): last position of each row
        const want = {
          pos: fx.tensor(run.tensors.logits_pos).data,
          rev: fx.tensor(run.tensors.logits_rev).data,
          scores: fx.tensor(run.tensors.scores).data,
          probs: fx.tensor(run.tensors.probs).data,
        };
        const tokens: number[] = [];
        const probsT = backend.alloc([V]);
        for (let step = 0; step < run.steps; step++) {
          const both = await backend.read(logits);
          const lp = both.subarray(0, V),
            lr = both.subarray(V, 2 * V);
          const at = (a: Float32Array) => a.subarray(step * V, (step + 1) * V);
          const scores = lp.map((v, i) => v - run.alpha * lr[i]);
          for (const [what, got, ref] of [
            ['decode logits pos', lp, at(want.pos)],
            ['decode logits rev', lr, at(want.rev)],
            ['scores', scores, at(want.scores)],
          ] as const) {
            const d = maxAbsDiff(got, ref);
            record(`${backendLabel(backend)} ${name}`, what, d);
            expect(d, `${what} at step ${step}`).toBeLessThanOrEqual(LOGIT_TOL);
          }
          // The backend's own fused contrast+softmax, against transformers' float64 softmax of the scores.
          const { argmax: token } = await backend.contrastSoftmax(probsT, logits, {
            alphas: [run.alpha],
            temperature: 1,
            beta: 0,
            uniform: 0.5,
          });
          const probs = await backend.read(probsT);
          const dp = maxAbsDiff(probs, at(want.probs));
          const probsTol =
            scoreErrorRange(lp, lr, at(want.pos), at(want.rev), run.alpha) / 4 +
            PROBS_ROUNDING[backendLabel(backend) as keyof typeof PROBS_ROUNDING];
          record(`${backendLabel(backend)} ${name}`, 'probs', dp);
          record(`${backendLabel(backend)} ${name}`, 'probs bar', probsTol);
          expect(dp, `probs at step ${step} (bar ${probsTol.toExponential(2)})`).toBeLessThanOrEqual(probsTol);
          tokens.push(token);
          // The same token goes to both rows: that is ROSE.
          logits = model.forward(cache, Int32Array.of(token, token));
        }
        expect(tokens).toEqual(run.tokens);
      },
    );
  });
}

for (const backend of backends) describeFixturesOn(backend);

afterAll(() => {
  // The measured gap to transformers, for the README and for anyone tightening the bar later.
  for (const [fixture, m] of Object.entries(measured)) {
    process.stdout.write(
      `max |Δ| vs transformers, ${fixture}: ${Object.entries(m)
        .map(([k, v]) => `${k} ${v.toExponential(1)}`)
        .join('; ')}\n`,
    );
  }
});
