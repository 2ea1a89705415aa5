/**
 * Hostile inputs: config.json, tokenizer.json, tokenizer_config.json and chat templates, mutated at
 * random, end either in a correct load or in a RoseError — never another exception, never a hang.
 * (safetensors bytes are fuzzed in test/model/safetensors.test.ts.) `npm test` runs a bounded number
 * of inputs; `npm run fuzz` runs many more (FUZZ_RUNS).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { RoseError } from '../../src/errors.ts';
import { parseLlamaConfig } from '../../src/model/config.ts';
import { RoseTokenizer } from '../../src/model/tokenizer.ts';
import { renderChat } from '../../src/decode/template.ts';
import { fixturesDir } from '../helpers/fixtures.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const DEFAULT = join(import.meta.dirname, '..', '..', 'weights', 'random-tiny');
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** Runs f; anything thrown must be a RoseError with a non-empty message. */
function onlyRoseErrors(f: () => unknown): 'ok' | 'rose-error' {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (!(e instanceof RoseError)) throw new Error(`not a RoseError: ${(e as Error)?.stack ?? String(e)}`);
    expect(e.message.length).toBeGreaterThan(10);
    return 'rose-error';
  }
}

/** Any JSON value, nested a little: what a corrupted or hand-edited file can hold. */
const anyJson = fc.jsonValue({ maxDepth: 3 });

/** A JSON object with some of its keys replaced by random values or deleted. */
function mutated(base: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(base);
  return fc
    .array(
      fc.record({ key: fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })), value: fc.option(anyJson, { nil: undefined }) }),
      { minLength: 1, maxLength: 4 },
    )
    .map((edits) => {
      const out: Record<string, unknown> = structuredClone(base);
      for (const { key, value } of edits) {
        if (value === undefined) delete out[key];
        else out[key] = value;
      }
      return out;
    });
}

const seen: Record<string, Record<string, number>> = {};
const count = (what: string, outcome: string) => ((seen[what] ??= {})[outcome] = (seen[what][outcome] ?? 0) + 1);

describe(`fuzzing (${RUNS} inputs per property)`, () => {
  it('config.json: random mutations of every fixture config', () => {
    const configs = ['tiny-mha-f32', 'tiny-gqa-bf16-tied', 'tiny-f16-bias'].map((f) => json(join(fixturesDir, f, 'config.json')));
    fc.assert(
      fc.property(fc.constantFrom(...configs).chain(mutated), (cfg) => {
        count(
          'config',
          onlyRoseErrors(() => parseLlamaConfig(cfg)),
        );
      }),
      { numRuns: RUNS, seed: 61 },
    );
    fc.assert(
      fc.property(
        anyJson,
        (v) =>
          void count(
            'config',
            onlyRoseErrors(() => parseLlamaConfig(v)),
          ),
      ),
      { numRuns: RUNS, seed: 62 },
    );
  });

  it('tokenizer.json and tokenizer_config.json: random mutations and random JSON', () => {
    const tokenizerJson = json(join(DEFAULT, 'tokenizer.json'));
    const tokenizerConfig = json(join(DEFAULT, 'tokenizer_config.json'));
    const load = (tj: unknown, tc: unknown, gc?: unknown) => {
      const tok = RoseTokenizer.fromJSON({ dir: '<memory>', tokenizerJson: tj, tokenizerConfig: tc, generationConfig: gc });
      tok.decode(tok.encode('Hello, wörld! 🌹'));
    };
    fc.assert(
      fc.property(
        mutated(tokenizerJson),
        (tj) =>
          void count(
            'tokenizer.json',
            onlyRoseErrors(() => load(tj, tokenizerConfig)),
          ),
      ),
      { numRuns: RUNS, seed: 63 },
    );
    fc.assert(
      fc.property(
        mutated(tokenizerConfig),
        anyJson,
        (tc, gc) =>
          void count(
            'tokenizer_config.json',
            onlyRoseErrors(() => load(tokenizerJson, tc, gc)),
          ),
      ),
      { numRuns: RUNS, seed: 64 },
    );
    fc.assert(
      fc.property(
        anyJson,
        (tj) =>
          void count(
            'tokenizer.json',
            onlyRoseErrors(() => load(tj, {})),
          ),
      ),
      { numRuns: RUNS, seed: 65 },
    );
  });

  it('chat templates: random and truncated Jinja', () => {
    const real = json(join(DEFAULT, 'tokenizer_config.json')).chat_template as string;
    const pieces = [
      '{%',
      '%}',
      '{{',
      '}}',
      '{#',
      'for m in messages',
      'endfor',
      'if',
      'endif',
      'raise_exception("x")',
      'messages[0]["content"]',
      '|',
      'loop.index',
      '"',
      "'",
      '\n',
    ];
    const template = fc.oneof(
      fc.nat({ max: real.length }).map((n) => real.slice(0, n)),
      fc.array(fc.constantFrom(...pieces), { maxLength: 12 }).map((p) => p.join(' ')),
      fc.string({ maxLength: 60 }),
    );
    fc.assert(
      fc.property(
        template,
        (src) =>
          void count(
            'chat_template',
            onlyRoseErrors(() => renderChat(src, 'system prompt', 'question')),
          ),
      ),
      { numRuns: RUNS, seed: 66 },
    );
  });

  // What was tried, as a log line for the README's fuzzing record (`npm run fuzz` raises FUZZ_RUNS):
  // a record, not a check, so it is no test.
  afterAll(() => {
    for (const [what, outcomes] of Object.entries(seen)) process.stdout.write(`fuzz ${what}: ${JSON.stringify(outcomes)}\n`);
  });
});
