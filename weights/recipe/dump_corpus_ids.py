"""Writes .build/corpus-ids.jsonl: every string of the training corpus (each full conversation and
its prompt part) and every question of both test sets under both system prompts, with the recipe encoder's ids.
check_tokenizer.ts then compares them with @huggingface/tokenizers."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build  # noqa: E402
import corpus  # noqa: E402
from diag import load_tok  # noqa: E402

enc = load_tok()
corpus.set_pieces(enc.vocab)  # the corpus trained on is the second pass (build.py stage_data)
rows = corpus.build_train(build.CORPUS_PER_PROMPT, build.CORPUS_SEED)
held = [json.loads(l) for name in ("heldout.jsonl", "heldout-hard.jsonl") for l in open(os.path.join(build.TESTSETS, name))]
texts = set()
for r in rows:
    p = corpus.PROMPTS[r["prompt"]]
    texts.add(corpus.conversation_text(p, r["question"], r["answer"]))
    texts.add(corpus.prompt_text(p, r["question"]))
for h in held:
    for p in corpus.PROMPTS.values():
        texts.add(corpus.prompt_text(p, h["prompt"]))
os.makedirs(build.WORK, exist_ok=True)
with open(os.path.join(build.WORK, "corpus-ids.jsonl"), "w") as f:
    for t in sorted(texts):
        f.write(json.dumps({"text": t, "ids": enc.encode(t)}) + "\n")
print(len(texts), "strings")
