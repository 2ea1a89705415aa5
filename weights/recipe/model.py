"""A from-scratch Llama in torch with exactly the semantics of HF LlamaForCausalLM (eager) and rose-ts:

- RMSNorm: w * x / sqrt(mean(x^2) + eps)
- RoPE: rotate_half layout (first half / second half), inv_freq[i] = theta^(-2i/d), angles in f32
- attention: q.k / sqrt(head_dim), causal; GQA query head h reads kv head h // (H / Hkv)
- MLP: down(silu(gate(x)) * up(x)); logits = embed^T(norm(h)) when the embeddings are tied

forward() can also take the keys/values of a shared prefix (one sequence, broadcast over the batch).
Training uses it: every conversation starts with one of two fixed system prompts, so their keys and
values are computed once per step and the batch runs only the question and answer. This is the same
function as running each full sequence (causal attention: a prefix never sees what follows it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Config:
    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position_embeddings: int = 512

    def hf(self) -> dict:
        """config.json in the form transformers writes for LlamaForCausalLM."""
        d = asdict(self)
        return {
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "head_dim": d["head_dim"],
            "hidden_act": "silu",
            "hidden_size": d["hidden_size"],
            "initializer_range": 0.02,
            "intermediate_size": d["intermediate_size"],
            "max_position_embeddings": d["max_position_embeddings"],
            "mlp_bias": False,
            "model_type": "llama",
            "num_attention_heads": d["num_attention_heads"],
            "num_hidden_layers": d["num_hidden_layers"],
            "num_key_value_heads": d["num_key_value_heads"],
            "pretraining_tp": 1,
            "rms_norm_eps": d["rms_norm_eps"],
            "rope_scaling": None,
            "rope_theta": d["rope_theta"],
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "vocab_size": d["vocab_size"],
        }


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rope_tables(cfg: Config, positions: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (S, hd), computed in f32 as transformers does."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    ang = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Layer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        D, H, K, hd, I = cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.intermediate_size
        self.cfg = cfg
        self.input_layernorm = RMSNorm(D, cfg.rms_norm_eps)
        self.q_proj = nn.Linear(D, H * hd, bias=False)
        self.k_proj = nn.Linear(D, K * hd, bias=False)
        self.v_proj = nn.Linear(D, K * hd, bias=False)
        self.o_proj = nn.Linear(H * hd, D, bias=False)
        self.post_attention_layernorm = RMSNorm(D, cfg.rms_norm_eps)
        self.gate_proj = nn.Linear(D, I, bias=False)
        self.up_proj = nn.Linear(D, I, bias=False)
        self.down_proj = nn.Linear(I, D, bias=False)

    def forward(self, x, cos, sin, past, mask):
        cfg = self.cfg
        B, S, _ = x.shape
        H, K, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, S, H, hd).transpose(1, 2)
        k = self.k_proj(h).view(B, S, K, hd).transpose(1, 2)
        v = self.v_proj(h).view(B, S, K, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        new_kv = (k, v)
        if past is not None:
            pk, pv = past
            k = torch.cat([pk.expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([pv.expand(B, -1, -1, -1), v], dim=2)
        rep = H // K
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(mask, torch.finfo(att.dtype).min)
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, S, H * hd)
        x = x + self.o_proj(o)
        h = self.post_attention_layernorm(x)
        x = x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))
        return x, new_kv


class Llama(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def init_weights(self, gen: torch.Generator):
        std = 0.02
        with torch.no_grad():
            self.embed_tokens.weight.normal_(0, std, generator=gen)
            for l in self.layers:
                for lin in [l.q_proj, l.k_proj, l.v_proj, l.gate_proj, l.up_proj]:
                    lin.weight.normal_(0, std, generator=gen)
                for lin in [l.o_proj, l.down_proj]:
                    lin.weight.normal_(0, std / math.sqrt(2 * self.cfg.num_hidden_layers), generator=gen)

    def forward(self, ids: torch.Tensor, past=None, want_logits=True):
        """ids (B, S) at positions P..P+S-1, where P is the length of `past` (a per-layer list of (k, v)
        of one prefix sequence, shape (1, Hkv, P, hd)) or 0. Returns (logits or hidden, new per-layer kv)."""
        B, S = ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        x = self.embed_tokens(ids)
        cos, sin = rope_tables(self.cfg, torch.arange(P, P + S), x.dtype)
        # mask[i, j] True = masked: key j (0..P+S-1) is after query P+i
        mask = torch.arange(P + S)[None, :] > (torch.arange(S)[:, None] + P)
        kvs = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, cos, sin, None if past is None else past[i], mask)
            kvs.append(kv)
        x = self.norm(x)
        if not want_logits:
            return x, kvs
        return x @ self.embed_tokens.weight.t(), kvs

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def config_from_state(sd: dict) -> Config:
    """The Config of a Llama state dict (heads of dim 32, as the recipe builds them)."""
    vocab, hidden = sd["embed_tokens.weight"].shape
    layers = len({k.split(".")[1] for k in sd if k.startswith("layers.")})
    return Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=sd["layers.0.gate_proj.weight"].shape[0],
                  num_hidden_layers=layers, num_attention_heads=sd["layers.0.q_proj.weight"].shape[0] // 32,
                  num_key_value_heads=sd["layers.0.k_proj.weight"].shape[0] // 32, head_dim=32)


# HF tensor names <-> module parameters
def hf_state(model: Llama) -> dict[str, torch.Tensor]:
    out = {"model.embed_tokens.weight": model.embed_tokens.weight, "model.norm.weight": model.norm.weight}
    for i, l in enumerate(model.layers):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = l.input_layernorm.weight
        out[p + "post_attention_layernorm.weight"] = l.post_attention_layernorm.weight
        for n in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            out[p + f"self_attn.{n}.weight"] = getattr(l, n).weight
        for n in ["gate_proj", "up_proj", "down_proj"]:
            out[p + f"mlp.{n}.weight"] = getattr(l, n).weight
    return out
