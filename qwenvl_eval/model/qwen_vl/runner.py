"""The native Qwen-VL (v1) backend: plugs the model into the shared batching runner.

Prompt styles:
- "raw" (the paper's protocol, for Qwen-VL and Qwen-VL-Chat alike): `raw_prompt(family, parts)`,
  images inline as `<img>KEY</img>`; generation stops at `<|endoftext|>` only, like the official
  evaluation scripts.
- "chat": Qwen-VL-Chat's ChatML turn (default system "You are a helpful assistant."), each
  image written as `Picture N: <img>KEY</img>\\n` like its `from_list_format`; generation
  also stops at `<|im_end|>` and `<|im_start|>`.
The pixels always come from the request's ImageRef, never from re-opening KEY.
Outputs: the new tokens decoded with special tokens skipped, cut at the first stop string
if any, then stripped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ...errors import UserError
from ...types import GenerateRequest, Generation, Image, OptionScore, Request, Response, Text
from ..base import RunnerOptions
from ..devices import resolve_device, resolve_dtype
from ..preprocess import IMAGE_CONVERSION, cut_at_stops, decode_image, images_of, raw_prompt
from ..presets import ResolvedModel
from ..runner import BatchedRunner, GenOutput, Prepared
from .checkpoint import load_model
from .decoding import greedy_generate, score_continuations
from .modeling import PromptInputs
from .tokenizer import QwenVLTokenizer
from .vision import resize_image


def chat_query(parts: Sequence) -> str:
    """Qwen-VL-Chat's `from_list_format`: every image as `Picture N: <img>KEY</img>\\n`."""
    text, n = "", 0
    for p in parts:
        if isinstance(p, Image):
            n += 1
            text += f"Picture {n}: <img>{p.image.key}</img>\n"
        elif isinstance(p, Text):
            text += p.text
    return text


class QwenVLRunner(BatchedRunner):
    def __init__(self, model: ResolvedModel, options: RunnerOptions) -> None:
        super().__init__(model.family, options)
        self.resolved = model
        self.device = resolve_device(options.device)
        self.dtype = resolve_dtype(options.dtype, self.device)
        self.tokenizer = QwenVLTokenizer(model.path / "qwen.tiktoken")
        self.model = load_model(model.path, self.dtype, self.device)
        cfg = self.model.config
        tok = self.tokenizer
        if tok.img_start_id != cfg.visual.image_start_id or tok.eod_id >= cfg.vocab_size:
            raise UserError(
                f"{model.path}: qwen.tiktoken puts <img> at {tok.img_start_id} but config.json "
                f"says visual.image_start_id {cfg.visual.image_start_id} (vocab {cfg.vocab_size})"
            )
        self.image_size = cfg.visual.image_size
        self.pad_id = tok.eod_id
        self.chat_stops = frozenset({tok.eod_id, tok.im_end_id, tok.im_start_id})
        self.raw_stops = frozenset({tok.eod_id})

    # ---- Runner API ----------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[Response]:
        for r in requests:
            g = r.generation
            if g.num_beams != 1 or g.do_sample or g.repetition_penalty != 1.0:
                raise UserError(
                    f"item {r.id}: the native Qwen-VL backend decodes greedily only "
                    f"(num_beams={g.num_beams}, do_sample={g.do_sample}, "
                    f"repetition_penalty={g.repetition_penalty} asked for)"
                )
        return super().generate(requests)

    def provenance(self) -> dict[str, Any]:
        return {
            "backend": "native-qwen-vl",
            "model": self.resolved.spec,
            "path": str(self.resolved.path),
            "revision": self.resolved.revision,
            "preset": self.resolved.preset,
            "family": self.family.name,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "image_resize": f"PIL bicubic {self.image_size}x{self.image_size}",
            "image_conversion": IMAGE_CONVERSION["drop"],
            "torch": torch.__version__,
        }

    # ---- hooks ---------------------------------------------------------------------------
    def prepare(self, request: Request, index: int) -> Prepared:
        tok = self.tokenizer
        if request.style == "chat":
            ids = tok.chat_ids(chat_query(request.parts), request.system)
        else:
            ids = tok.encode(raw_prompt(self.family, request.parts))
        if not ids:
            raise ValueError("the prompt is empty")
        images = images_of(request.parts)
        offsets = tok.image_offsets(ids)
        if len(offsets) != len(images):
            raise ValueError(
                f"the prompt has {len(offsets)} <img> span(s) but the request carries "
                f"{len(images)} image(s)"
            )
        # The original visual.py: Image.open(path).convert("RGB"), alpha dropped.
        pixels = [resize_image(decode_image(im, "drop"), self.image_size) for im in images]
        inputs: dict[str, Any] = {"prompt": PromptInputs(ids, offsets, pixels)}
        num_tokens = len(ids)
        if not isinstance(request, GenerateRequest):
            # The prompt and each option are encoded separately, as the paper's ScienceQA
            # script does (`tokenizer(prompt) + tokenizer(" A")`).
            opts = [tok.encode(o) for o in request.options]
            empty = [o for o, ids_ in zip(request.options, opts, strict=True) if not ids_]
            if empty:
                raise ValueError(f"option {empty[0]!r} encodes to no tokens")
            inputs["options"] = opts
            num_tokens += max(len(o) for o in opts) - 1
        meta: dict[str, Any] = {"input_sizes": [[self.image_size, self.image_size]] * len(images)}
        if not isinstance(request, GenerateRequest):
            # Paper-mode ScienceQA compares options as eval_mm does on this dtype's logits.
            meta["logits_dtype"] = str(self.dtype).removeprefix("torch.")
        return Prepared(request, index, num_tokens, inputs=inputs, meta=meta)

    def generate_batch(self, batch: list[Prepared], generation: Generation) -> list[GenOutput]:
        stops = [self.chat_stops if p.request.style == "chat" else self.raw_stops for p in batch]
        rows = greedy_generate(
            self.model,
            [p.inputs["prompt"] for p in batch],
            generation.max_new_tokens,
            generation.min_new_tokens,
            stops,
            self.pad_id,
        )
        outs = []
        for row in rows:
            text = cut_at_stops(self.tokenizer.decode(row), generation.stop)
            outs.append(GenOutput(text.strip(), len(row)))
        return outs

    def score_batch(self, batch: list[Prepared]) -> list[tuple[OptionScore, ...]]:
        results = score_continuations(
            self.model,
            [p.inputs["prompt"] for p in batch],
            [p.inputs["options"] for p in batch],
            self.pad_id,
        )
        if self.dtype == torch.bfloat16:
            # eval_mm rounds each token's loss to bf16: the task needs the tokens, not the sums.
            for p, per_item in zip(batch, results, strict=True):
                p.meta["option_token_logprobs"] = per_item
        return [
            tuple(OptionScore.from_sum(sum(tokens), len(tokens)) for tokens in per_item)
            for per_item in results
        ]
