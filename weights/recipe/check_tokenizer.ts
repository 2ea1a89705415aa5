/**
 * The full tokenizer cross-check: every string in .build/corpus-ids.jsonl (written by
 * dump_corpus_ids.py: the whole training corpus and the held-out prompts, with the recipe encoder's
 * ids) encoded by @huggingface/tokenizers. Usage: node --import tsx weights/recipe/check_tokenizer.ts
 * (A sample of these strings is checked in `npm test`, test/model/roseMicro.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizerClass } from '@huggingface/tokenizers';

const dir = join(import.meta.dirname, '..', 'rose-micro');
const Tokenizer = HfTokenizerClass as unknown as new (
  j: object,
  c: object,
) => { encode(t: string, o?: { add_special_tokens?: boolean }): { ids: number[] } };
const hf = new Tokenizer(
  JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
  JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
);
let n = 0;
let bad = 0;
for (const line of readFileSync(join(import.meta.dirname, '.build', 'corpus-ids.jsonl'), 'utf8').split('\n')) {
  if (!line) continue;
  const { text, ids } = JSON.parse(line) as { text: string; ids: number[] };
  n++;
  const got = hf.encode(text, { add_special_tokens: true }).ids;
  if (got.length !== ids.length || got.some((v, i) => v !== ids[i])) {
    if (bad++ < 5) console.log('MISMATCH', JSON.stringify(text.slice(-120)), ids.slice(-20), got.slice(-20));
  }
}
console.log(`${n} strings, ${bad} mismatches`);
process.exit(bad ? 1 : 0);
