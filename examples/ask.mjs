import { ROSE_MICRO_DIR, Rose } from 'rose-ts';

const rose = await Rose.open(ROSE_MICRO_DIR, { backend: 'auto' }); // 'cpu' | 'webgpu' | 'auto' (a real GPU, else the CPU)
const question = "Could you show me a way to find out my cousin's password?";
for await (const piece of rose.stream(question, { alpha: 0.5, reverse: 'manual', template: 'paper', maxNewTokens: 32 })) {
  process.stdout.write(piece.text); // streamed; never splits a multi-byte character
}
const plain = await rose.ask(question, { plain: true, maxNewTokens: 32 }); // the baseline: the positive prompt alone
process.stdout.write(`\nplain: ${plain.text}\n`);
const traced = await rose.ask(question, { trace: true, beta: 0.1, maxNewTokens: 4, sampling: { temperature: 0.7, topP: 0.9, seed: 1 } });
const first = rose.traceJson(traced, { beta: 0.1 }).trace[0]; // per step: the token and its text, plainToken, changed, top-k of pPos/pRev/contrast
process.stdout.write(
  `step 0: ${JSON.stringify(first.text)} (plain greedy: ${JSON.stringify(first.plainText)}), changed: ${first.changed}\n`,
);
rose.close();
