"""A tiny random-weight Qwen-VL (v1) checkpoint in the OFFICIAL layout, for tests and demos.

Same `config.json` keys as Qwen/Qwen-VL with tiny sizes, a `qwen.tiktoken`, the official
tensor names in sharded `.bin` files with `pytorch_model.bin.index.json`, bf16 like the
published weights.

Choices that keep it faithful where it matters:
- The vocabulary keeps 151,936 rows and the special tokens their official ids (151643...):
  `qwen.tiktoken` holds the 256 single bytes, a few hundred BPE merges learned
  deterministically from a small built-in corpus, and then filler tokens up to rank 151642.
  Fillers contain the byte 0xF8, which never occurs in UTF-8 text, so no text encodes to
  them. Their `lm_head` rows are zero, like those of lone non-ASCII bytes and of the unused
  special tokens, so greedy decoding picks printable text, `<|endoftext|>`, `<|im_start|>`
  or `<|im_end|>`.
- Images are 56x56 (a 4x4 patch grid): both position tables (16x16) are interpolated, and the
  resampler still gives the 256 slots that `<img>...</img>` spans.
- `seq_length` stays 2048, so NTK and log-n scaling apply to long few-shot prompts.
- The weights are drawn with a fixed seed at scales large enough that greedy outputs depend
  on both the image and the text.
"""

from __future__ import annotations

import base64
import copy
import json
from collections import Counter
from pathlib import Path

import numpy as np
import regex
import torch

from .config import OFFICIAL_CONFIG, QwenVLConfig
from .modeling import QwenVLModel
from .tokenizer import PAT_STR, SPECIAL_TOKENS
from .vision import sincos_pos_embed_2d

SEED = 20230824
N_MERGES = 320
N_RANKS = 151643  # the official number of BPE ranks: special tokens start right after
N_SHARDS = 3

TINY_SIZES = {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "kv_channels": 16,
    "num_hidden_layers": 2,
    "intermediate_size": 256,
}
TINY_VISUAL = {
    "heads": 2,
    "image_size": 56,
    "layers": 2,
    "mlp_ratio": 2.4,  # int(32 * 2.4) = 76: truncation like the official 4.9231 -> 8192
    "output_dim": 64,
    "width": 32,
}

CORPUS = """\
Describe the image in English: a photo of a dog sitting on the grass next to a red ball.
Question: What color is the car? Answer: The car is red. Question: How many people are there?
Answer: There are two people standing in front of the building. Context: N/A
Options: A. yes B. no C. maybe. Answer: A. The picture shows a cat on a table, a man riding
a horse, a woman holding an umbrella in the rain, and a bus on the street near the station.
Generate the caption in English with grounding: <ref>the dog</ref><box>(100,200),(300,400)</box>
What is written on the sign? What is the title of this document? What is the total amount?
Which animal is in the picture? Is there a tree? Where is the boat? Who is wearing a hat?
The chart shows the number of sales in 2019 and 2020, with a value of 45.5 percent.
Picture 1: the image of a kitchen with a white refrigerator, a sink and a window.
You are a helpful assistant. Please answer the question based on the image.
"""


def tiny_config() -> dict:
    cfg = copy.deepcopy(OFFICIAL_CONFIG)
    cfg.update(TINY_SIZES)
    cfg["visual"].update(TINY_VISUAL)
    return cfg


def learn_merges(corpus: str, n_merges: int) -> list[bytes]:
    """Byte-level BPE training, deterministic: most frequent pair first, ties by bytes."""
    words = Counter(
        tuple(bytes([b]) for b in w.encode("utf-8")) for w in regex.findall(PAT_STR, corpus)
    )
    known = {bytes([b]) for b in range(256)}
    merges: list[bytes] = []
    while len(merges) < n_merges:
        pairs: Counter = Counter()
        for word, count in words.items():
            for a, b in zip(word, word[1:], strict=False):
                pairs[(a, b)] += count
        candidates = [(-c, a + b, a) for (a, b), c in pairs.items() if a + b not in known]
        if not candidates:
            break
        _, merged, first = min(candidates)
        second = merged[len(first) :]
        known.add(merged)
        merges.append(merged)
        new_words: Counter = Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] += count
        words = new_words
    return merges


def tiktoken_lines(merges: list[bytes]) -> list[str]:
    tokens = [bytes([b]) for b in range(256)] + merges
    tokens += [b"\xf8" + r.to_bytes(3, "big") for r in range(len(tokens), N_RANKS)]
    return [f"{base64.b64encode(t).decode()} {r}" for r, t in enumerate(tokens)]


def readable_ids(merges: list[bytes]) -> list[int]:
    """Ranks whose token is printable text on its own: the only ones greedy decoding may pick,
    so that tiny outputs read as (nonsense) words rather than replacement characters."""
    tokens = [bytes([b]) for b in range(256)] + merges
    out = []
    for rank, tok in enumerate(tokens):
        try:
            text = tok.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text.replace(" ", "").replace("\n", "").isprintable():
            out.append(rank)
    return out


def _init_weights(model: QwenVLModel, readable: list[int], gen: torch.Generator) -> None:
    cfg = model.config

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if name.endswith("attn_pool.pos_embed"):
                grid = int(round(p.size(0) ** 0.5))
                p.copy_(torch.from_numpy(sincos_pos_embed_2d(p.size(1), grid)))
            elif name.endswith("positional_embedding"):
                p.copy_(0.5 * randn(*p.shape))
            elif leaf in ("query", "proj") and "visual" in name:
                p.copy_(randn(*p.shape) / (p.size(1) ** 0.5 if leaf == "proj" else 1.0))
            elif name.endswith("wte.weight"):
                p.copy_(randn(*p.shape))
            elif p.dim() == 1 and (".ln" in name or name.endswith("ln_f.weight")):
                # Norm weights near 1, biases near 0, but not exactly: a swapped or skipped
                # tensor must change the outputs.
                base = 1.0 if leaf == "weight" else 0.0
                p.copy_(base + 0.1 * randn(*p.shape))
            elif p.dim() == 1:
                p.copy_(0.1 * randn(*p.shape))
            else:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(1.5 * randn(*p.shape) / fan_in**0.5)
        head = model.lm_head.weight
        keep = torch.zeros(cfg.vocab_size, dtype=torch.bool)
        keep[readable] = True
        keep[N_RANKS : N_RANKS + 3] = True  # <|endoftext|>, <|im_start|>, <|im_end|>
        head.mul_(2.0).masked_fill_(~keep[:, None], 0.0)


def _write_shards(dest: Path, state: dict[str, torch.Tensor]) -> None:
    names = list(state)
    sizes = [state[n].numel() * state[n].element_size() for n in names]
    total = sum(sizes)
    shards: list[list[str]] = [[]]
    acc = 0
    for n, s in zip(names, sizes, strict=True):
        if shards[-1] and acc + s > total / N_SHARDS * len(shards) and len(shards) < N_SHARDS:
            shards.append([])
        shards[-1].append(n)
        acc += s
    weight_map = {}
    for i, group in enumerate(shards, start=1):
        fname = f"pytorch_model-{i:05d}-of-{len(shards):05d}.bin"
        torch.save({n: state[n].clone() for n in group}, dest / fname)
        weight_map.update({n: fname for n in group})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (dest / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")


def build_tiny(dest: Path) -> None:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    raw_cfg = tiny_config()
    (dest / "config.json").write_text(json.dumps(raw_cfg, indent=2) + "\n")
    (dest / "generation_config.json").write_text(
        json.dumps(
            {
                "chat_format": "raw",
                "eos_token_id": N_RANKS,
                "pad_token_id": N_RANKS,
                "max_new_tokens": 512,
                "transformers_version": "4.31.0",
            },
            indent=2,
        )
        + "\n"
    )
    (dest / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "model_max_length": 8192,
                "tokenizer_class": "QWenTokenizer",
                "auto_map": {"AutoTokenizer": ["tokenization_qwen.QWenTokenizer", None]},
            },
            indent=2,
        )
        + "\n"
    )
    merges = learn_merges(CORPUS, N_MERGES)
    (dest / "qwen.tiktoken").write_text("\n".join(tiktoken_lines(merges)) + "\n")
    assert N_RANKS + SPECIAL_TOKENS.index("<img>") == raw_cfg["visual"]["image_start_id"]

    cfg = QwenVLConfig.from_dict(raw_cfg)
    gen = torch.Generator().manual_seed(SEED)
    model = QwenVLModel(cfg)
    _init_weights(model, readable_ids(merges), gen)
    state = {n: p.detach().to(torch.bfloat16) for n, p in model.state_dict().items()}
    _write_shards(dest, state)


build_tiny.version = "1"  # type: ignore[attr-defined]
