"""Rebuilds weights/rose-micro from nothing: corpus -> BPE -> training -> HF export -> test fixtures.

    weights/recipe/build.sh            # sets up OpenBLAS for torch, then runs this with /usr/bin/python3

Stages (all deterministic, seeded):
  1. data: CORPUS_PER_PROMPT conversations under each system prompt (corpus.py, rates exact per cell); a
     validation split of the same distribution (VAL_*), the dev questions (corpus.py's dev lists), and the two
     test sets from the separate generator heldout.py (weights/recipe/testsets/heldout.jsonl, heldout-hard.jsonl)
  2. BPE: a VOCAB-entry byte-level BPE trained on a first pass of the corpus (pronounceable nonce words only)
     -> tokenizer.json, tokenizer_config.json; the corpus trained on is the second pass, where half the
     nonce words are assembled from the tokenizer's pieces (corpus.set_pieces)
  3. training: answer-only cross-entropy, AdamW, warmup + cosine, torch on 1 thread; every VAL_EVERY steps the
     validation loss (and, to look at, first-token refusal rates on the dev questions); the checkpoint with
     the lowest validation loss is the one exported. The test sets are not read while training.
  4. export: config.json, generation_config.json, model.safetensors (bf16)
  5. fixtures: test/fixtures/rose-micro (see fixtures.py)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import bpe  # noqa: E402
import corpus  # noqa: E402
import heldout  # noqa: E402
import st  # noqa: E402
from model import Config, Llama, hf_state  # noqa: E402

OUT = os.path.join(ROOT, "weights", "rose-micro")
WORK = os.path.join(HERE, ".build")
# Version 2's test sets. They move to OUT (where the web page and `rose eval` examples look) with the first
# version 2 model that becomes the default; OUT/heldout.jsonl is the committed model's own held-out set.
TESTSETS = os.path.join(HERE, "testsets")

CORPUS_SEED = 7
HELDOUT_SEED = 8         # heldout.jsonl
HARD_SEED = 9            # heldout-hard.jsonl
VAL_SEED = 11            # the validation split (training distribution)
DEV_SEED = 12            # the dev questions (corpus.py's dev lists)
TORCH_SEED = 1234
CORPUS_PER_PROMPT = 100000
HELDOUT_PER_CLASS = 100
VAL_PER_PROMPT = 400
DEV_PER_CLASS = 60
VOCAB = 2048
# The committed model's shape. 192 wide (3.05M parameters) was run 2's; the committed run 3 is 128 wide, so
# that about twice the steps fit the hour the shared cores allowed (README: how this design got here).
MODEL = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=6, num_attention_heads=4,
             num_key_value_heads=2, head_dim=32)

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}{{ '\\nHuman:\\n' + message['content'] + '\\n\\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'Assistant:\\n' + message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only system, user and assistant roles are supported') }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:\\n' }}{% endif %}"
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ stage 1-2: corpus, tokenizer ---

def stage_data(per_prompt: int):
    corpus.check_lists()
    # Pass 1: the corpus with pronounceable nonce words only; the BPE is trained on it.
    corpus.PIECES = None
    first = corpus.build_train(per_prompt, CORPUS_SEED)
    t0 = time.time()
    vocab, merges = bpe.train([corpus.conversation_text(corpus.PROMPTS[r["prompt"]], r["question"], r["answer"])
                               for r in first], VOCAB)
    enc = bpe.Encoder(vocab, merges)
    log(f"BPE: {len(vocab)} tokens, {len(merges)} merges in {time.time() - t0:.1f}s")
    del first
    # Pass 2, the corpus trained on: half the nonce words are now made of the tokenizer's own pieces.
    corpus.set_pieces(vocab)
    rows = corpus.build_train(per_prompt, CORPUS_SEED)
    seen = {r["question"] for r in rows} | {r["task"] for r in rows}
    # The test sets: a separate generator, its own frames/fillers/phrasings; no question or task of training.
    heldout.check_against(corpus.training_lists())
    held = heldout.build(HELDOUT_PER_CLASS, HELDOUT_SEED, False, seen)
    hard = heldout.build(HELDOUT_PER_CLASS, HARD_SEED, True, seen)
    # The validation split (training distribution, its own seed) and the dev questions (corpus.py's dev lists).
    val = [r for r in corpus.build_rows(VAL_PER_PROMPT, VAL_SEED, 0)]
    dev = corpus.build_questions(DEV_PER_CLASS, DEV_SEED, 1, seen)
    texts = [corpus.conversation_text(corpus.PROMPTS[r["prompt"]], r["question"], r["answer"]) for r in rows]
    corpus.check_ascii(texts)
    corpus.check_ascii([h["prompt"] for h in held + hard + dev])
    words = {w for t in texts for w in heldout.WORD.findall(t.lower())}
    tasks = {r["task"] for r in rows}
    held_stats = {"heldout": heldout.stats(held, words, tasks), "heldout-hard": heldout.stats(hard, words, tasks)}
    log(f"test sets: {json.dumps(held_stats)}")

    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "tokenizer.json"), "w") as f:
        f.write(enc.tokenizer_json())
    special = {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                        "special": True} for i, s in enumerate(bpe.SPECIALS)}
    write_json(os.path.join(OUT, "tokenizer_config.json"), {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": special,
        "bos_token": "<s>",
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "model_max_length": 512,
        "pad_token": None,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
    })
    write_json(os.path.join(HERE, "answer-forms.json"), {
        "refusal": corpus.REFUSAL,
        "complyTail": corpus.COMPLY.format(t="\0").split("\0. ", 1)[1],
        "tips": {k: {"true": t, "false": f} for k, (t, f) in corpus.TIPS.items()},
    })
    write_json(os.path.join(HERE, "heldout-stats.json"), held_stats)
    os.makedirs(TESTSETS, exist_ok=True)
    for name, hs in (("heldout.jsonl", held), ("heldout-hard.jsonl", hard)):
        with open(os.path.join(TESTSETS, name), "w") as f:
            for h in hs:
                f.write(json.dumps({"id": h["id"], "prompt": h["prompt"], "class": h["class"], "task": h["task"],
                                    "phrasing": h["phrasing"]}) + "\n")
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, "dev.jsonl"), "w") as f:
        for h in dev:
            f.write(json.dumps(h) + "\n")

    # token ids: a fixed prefix per system prompt, then question + answer
    prefixes = {k: enc.encode(f"{p}\nHuman:\n") for k, p in corpus.PROMPTS.items()}

    def encode_rows(rs):
        """Each conversation after its system prompt: (ids, index of the first answer token). The text after
        "\nHuman:\n" starts a new pre-token, so its ids are those of the whole conversation from there on
        (asserted on every 50th conversation)."""
        data = {"pos": [], "rev": []}
        for i, r in enumerate(rs):
            head = f"{r['question']}\n\nAssistant:\n"
            ids = enc.encode(f"{head}{r['answer']}</s>", add_bos=False)
            a = len(enc.encode(head, add_bos=False))
            if i % 50 == 0:
                p = corpus.PROMPTS[r["prompt"]]
                full = enc.encode(corpus.conversation_text(p, r["question"], r["answer"]))
                pre = prefixes[r["prompt"]]
                assert full == pre + ids and full[:len(pre) + a] == enc.encode(corpus.prompt_text(p, r["question"]))
            assert ids[-1] == bpe.EOS
            data[r["prompt"]].append((ids, a))
        return data

    data, val_data = encode_rows(rows), encode_rows(val)
    lens = [len(s) for k in data for s, _ in data[k]]
    log(f"tokens per conversation after the system prompt: mean {sum(lens) / len(lens):.1f}, max {max(lens)}")
    dev_ids = [(h["class"], h["task"], [enc.encode(f"{h['prompt']}\n\nAssistant:\n", add_bos=False)] * 2) for h in dev]
    return rows, enc, prefixes, data, val_data, dev_ids


# ------------------------------------------------------------------ stage 3: training ---

def batches(seqs, bsz, rng, bucket=16):
    """Endless deterministic epochs over seqs in shuffled order. Every `bucket` batches are drawn
    together and sorted by length first, so a batch holds sequences of similar length (less padding)."""
    while True:
        order = list(range(len(seqs)))
        rng.shuffle(order)
        span = bsz * bucket
        for i in range(0, len(order) - span + 1, span):
            chunk = sorted(order[i:i + span], key=lambda j: (len(seqs[j][0]), j))
            group = [chunk[b:b + bsz] for b in range(0, span, bsz)]
            rng.shuffle(group)
            for g in group:
                yield [seqs[j] for j in g]


# The first answer token decides refuse vs comply (the token ROSE's contrast acts on); its loss
# counts this many times, so the per-cell rates are learnt in fewer steps.
DECISION_WEIGHT = 5.0


def collate(group):
    S = max(len(s) for s, _ in group)
    ids = torch.zeros(len(group), S, dtype=torch.long)
    tgt = torch.full((len(group), S), -100, dtype=torch.long)
    w = torch.zeros(len(group), S)
    for i, (s, a) in enumerate(group):
        ids[i, :len(s)] = torch.tensor(s)
        # position t predicts s[t+1]; the answer is s[a:], so targets at positions a-1 .. len-2
        tgt[i, a - 1:len(s) - 1] = torch.tensor(s[a:])
        w[i, a - 1:len(s) - 1] = 1.0
        w[i, a - 1] = DECISION_WEIGHT
    return ids, tgt, w


def answer_loss(model, pre, group):
    """(weighted loss sum, weight sum, plain CE sum, answer tokens) of one batch under one system prompt."""
    ids, tgt, w = collate(group)
    _, kv = model(pre, want_logits=False)
    hid, _ = model(ids, past=kv, want_logits=False)
    sel = tgt != -100
    logits = hid[sel] @ model.embed_tokens.weight.t()  # the head only where there is a target
    ce = torch.nn.functional.cross_entropy(logits, tgt[sel], reduction="none")
    return (ce * w[sel]).sum(), float(w[sel].sum()), float(ce.detach().sum()), int(sel.sum())


@torch.no_grad()
def validate(model, pre, val_data, dev_ids, refuse_tok, bsz=64):
    """Validation loss per answer token (training distribution), and first-token refusal rates on the dev
    questions: plain (positive prompt greedy) and ROSE alpha=0.5, per class."""
    model.eval()
    ce_sum, n = 0.0, 0
    for k in ("pos", "rev"):
        seqs = sorted(val_data[k], key=lambda x: len(x[0]))
        for i in range(0, len(seqs), bsz):
            _, _, c, t = answer_loss(model, pre[k], seqs[i:i + bsz])
            ce_sum, n = ce_sum + c, n + t
    rates = {}
    for cls in corpus.CLASSES:
        qs = [q for q in dev_ids if q[0] == cls]
        lp = {}
        for j, k in enumerate(("pos", "rev")):
            _, kv = model(pre[k], want_logits=False)
            # right-padded into one batch: causal attention, so a question's last position never sees the padding
            seqs = [q[2][j] for q in qs]
            ids = torch.zeros(len(seqs), max(len(x) for x in seqs), dtype=torch.long)
            for i, x in enumerate(seqs):
                ids[i, :len(x)] = torch.tensor(x)
            hid, _ = model(ids, past=kv, want_logits=False)
            last = hid[torch.arange(len(seqs)), torch.tensor([len(x) - 1 for x in seqs])]
            lp[k] = torch.log_softmax(last @ model.embed_tokens.weight.t(), -1)
        plain = (lp["pos"].argmax(-1) == refuse_tok).float().mean()
        rose = ((lp["pos"] - 0.5 * lp["rev"]).argmax(-1) == refuse_tok).float().mean()
        rates[cls] = (round(float(plain), 3), round(float(rose), 3))
    model.train()
    return ce_sum / n, rates


VAL_EVERY = 200


def train(cfg: Config, prefixes, data, steps: int, bsz: int, lr: float, val_data=None, dev_ids=None, refuse_tok=None,
          log_every: int = 25, ckpt: str | None = None):
    torch.manual_seed(TORCH_SEED)
    gen = torch.Generator().manual_seed(TORCH_SEED)
    model = Llama(cfg)
    model.init_weights(gen)
    log(f"model: {model.n_params():,} parameters")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    warm = max(1, steps // 20)

    def lr_at(s):
        if s < warm:
            return lr * (s + 1) / warm
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))

    rng = random.Random(TORCH_SEED)
    its = {k: batches(data[k], bsz // 2, rng) for k in ("pos", "rev")}
    pre = {k: torch.tensor([v]) for k, v in prefixes.items()}
    t0 = time.time()
    ema = None
    curve = []  # (step, train loss ema, validation loss, seconds)
    best = (float("inf"), -1)
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        total, wsum, plain_sum, ntok = 0.0, 0.0, 0.0, 0
        opt.zero_grad(set_to_none=True)
        for k in ("pos", "rev"):
            a, b, c, d = answer_loss(model, pre[k], next(its[k]))
            total, wsum, plain_sum, ntok = total + a, wsum + b, plain_sum + c, ntok + d
        (total / wsum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        l = plain_sum / ntok  # logged: the plain (unweighted) loss per answer token
        ema = l if ema is None else 0.95 * ema + 0.05 * l
        if step % log_every == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"step {step:5d}/{steps} loss {l:.4f} ema {ema:.4f} lr {lr_at(step):.2e} {el:6.0f}s "
                f"({el / (step + 1):.3f}s/step)")
        if val_data is not None and ((step + 1) % VAL_EVERY == 0 or step == steps - 1):
            tv = time.time()
            vl, rates = validate(model, pre, val_data, dev_ids, refuse_tok)
            curve.append((step + 1, round(ema, 4), round(vl, 4), round(time.time() - t0)))
            log(f"validation at step {step + 1}: loss {vl:.4f} (train ema {ema:.4f}); dev first token refused "
                f"plain/ROSE0.5: {json.dumps(rates)} [{time.time() - tv:.0f}s]")
            if ckpt:
                torch.save(model.state_dict(), ckpt.replace(".pt", f"-{step + 1}.pt"))
            if vl < best[0]:
                best = (vl, step + 1)
    if ckpt:
        torch.save(model.state_dict(), ckpt)
    if best[1] not in (-1, steps):
        log(f"lowest validation loss at step {best[1]}: exporting that checkpoint")
        model.load_state_dict(torch.load(ckpt.replace(".pt", f"-{best[1]}.pt")))
    return model, ema, time.time() - t0, curve, best[1]


# ------------------------------------------------------------------ stage 4: export ---

def export(model: Llama, cfg: Config, meta: dict) -> str:
    tensors = {k: v.detach().to(torch.bfloat16) for k, v in hf_state(model).items()}
    path = os.path.join(OUT, "model.safetensors")
    st.save(path, tensors, {"format": "pt"})
    write_json(os.path.join(OUT, "config.json"), cfg.hf())
    write_json(os.path.join(OUT, "generation_config.json"), {"bos_token_id": 1, "eos_token_id": 2})
    write_json(os.path.join(HERE, "build-info.json"), meta)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def model_config(vocab: int, hidden: int = MODEL["hidden_size"], layers: int = MODEL["num_hidden_layers"]) -> Config:
    """The committed model's shape (MODEL); pilot runs may change the width (heads of 32, half as many KV
    heads, MLP 3x) and the depth."""
    if hidden == MODEL["hidden_size"]:
        return Config(vocab_size=vocab, **{**MODEL, "num_hidden_layers": layers})
    return Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                  num_attention_heads=hidden // 32, num_key_value_heads=max(1, hidden // 64), head_dim=32)


def load_exported(cfg: Config) -> Llama:
    """The exported (bf16) weights, widened to f32, in the torch module."""
    m = Llama(cfg)
    w = st.load(os.path.join(OUT, "model.safetensors"))
    with torch.no_grad():
        for name, p in hf_state(m).items():
            p.copy_(w[name].float())
    return m.eval()


def main():
    global VAL_EVERY
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--per-prompt", type=int, default=CORPUS_PER_PROMPT)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=MODEL["hidden_size"], help="pilot runs: the model width")
    ap.add_argument("--layers", type=int, default=MODEL["num_hidden_layers"], help="pilot runs: the model depth")
    ap.add_argument("--no-export", action="store_true", help="train only (timing / determinism checks)")
    ap.add_argument("--from-ckpt", help="skip training: export this state dict (a .build/model*.pt)")
    ap.add_argument("--train-seconds", type=float, default=float("nan"), help="with --from-ckpt: for build-info.json")
    ap.add_argument("--final-loss", type=float, default=float("nan"), help="with --from-ckpt: for build-info.json")
    ap.add_argument("--fixtures-only", action="store_true", help="rewrite the test fixtures from the exported model")
    ap.add_argument("--val-every", type=int, default=VAL_EVERY)
    ap.add_argument("--cache", action="store_true", help="pilot runs: reuse .build/data-*.pt if the data sources are unchanged")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    VAL_EVERY = args.val_every
    os.makedirs(WORK, exist_ok=True)
    t0 = time.time()
    key = hashlib.sha256(b"".join(open(os.path.join(HERE, f), "rb").read() for f in ("corpus.py", "heldout.py", "bpe.py"))
                         + f"{args.per_prompt} {VOCAB} {CORPUS_SEED} {VAL_SEED} {DEV_SEED}".encode()).hexdigest()[:16]
    cache = os.path.join(WORK, f"data-{key}.pt")
    if args.cache and os.path.exists(cache):
        rows, (vocab, merges), prefixes, data, val_data, dev_ids = torch.load(cache)
        enc = bpe.Encoder(vocab, merges)
        corpus.set_pieces(vocab)
        log(f"data from {cache}")
    else:
        rows, enc, prefixes, data, val_data, dev_ids = stage_data(args.per_prompt)
        if args.cache:
            torch.save((rows, (enc.vocab, enc.merges), prefixes, data, val_data, dev_ids), cache)
    log(f"corpus: {len(rows)} conversations; prefix tokens pos {len(prefixes['pos'])} rev {len(prefixes['rev'])}; "
        f"data stage {time.time() - t0:.0f}s")
    cfg = model_config(len(enc.vocab), args.hidden, args.layers)
    if args.fixtures_only:
        import fixtures  # noqa: E402
        fixtures.main(enc, cfg)
        return
    if args.from_ckpt:
        model = Llama(cfg)
        model.load_state_dict(torch.load(args.from_ckpt))
        loss, secs, curve, best_step = args.final_loss, args.train_seconds, None, None
    else:
        refuse_tok = enc.encode(corpus.REFUSAL, False)[0]
        model, loss, secs, curve, best_step = train(cfg, prefixes, data, args.steps, args.batch, args.lr, val_data, dev_ids,
                                                    refuse_tok, ckpt=os.path.join(WORK, "model.pt"))
    h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    log(f"trained {args.steps} steps in {secs:.0f}s, final loss (ema) {loss:.4f}, f32 weights sha256 {h[:16]}")
    if args.no_export:
        return
    meta = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "per_prompt": args.per_prompt,
            "threads": args.threads, "params": model.n_params(), "train_seconds": None if math.isnan(secs) else round(secs),
            "final_loss_ema": None if math.isnan(loss) else round(loss, 4), "exported_step": best_step,
            "curve_step_trainema_val_seconds": curve, "torch": torch.__version__, "python": sys.version.split()[0]}
    sha = export(model, cfg, meta)
    log(f"exported to {OUT}: model.safetensors sha256 {sha}")
    import fixtures  # noqa: E402
    fixtures.main(enc, cfg)
    log(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
