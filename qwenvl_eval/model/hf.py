"""Hugging Face transformers backend for the chat-style families: Qwen2-VL, Qwen2.5-VL, Qwen3-VL.

Batching rules that keep outputs independent of the batch (checked by tests/model):
- prompts are left-padded with an attention mask; multimodal RoPE positions are computed per
  row from the unpadded tokens (transformers' `get_rope_index` honours the mask);
- every item is preprocessed on its own (its own resize, its own image-token count), so an
  item's pixels never depend on its batch neighbours;
- the checkpoint's generation config is replaced by a neutral one: decoding is exactly what the
  request says (greedy unless asked otherwise), never the checkpoint's sampling or repetition
  penalty (a request's own `repetition_penalty`, e.g. the checkpoints' 1.05 restored with
  --gen-kwargs, is passed on);
- images are decoded by `preprocess.decode_image` (bounded; transparency onto white, as the
  processor's convert_to_rgb) and resized by the PIL image processor.

Option scoring encodes the prompt (and its images) once, then continues the prompt's KV cache,
copied once per option, over the option tokens.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..types import GenerateRequest, Generation, OptionScore, Request
from . import preprocess as pp
from .base import RunnerOptions
from .devices import resolve_device, resolve_dtype
from .presets import ResolvedModel, quiet_progress_bars
from .runner import BatchedRunner, GenOutput, Prepared

log = logging.getLogger(__name__)

_MODEL_CLASSES = {
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
}


@dataclass
class _Inputs:
    ids: list[int]
    types: list[int]  # mm_token_type_ids: 0 text, 1 image
    pixel_values: Any  # torch.Tensor (patches, dim) or None
    grid: Any  # torch.Tensor (images, 3) or None
    options: list[list[int]] | None = None


def _chat_template(path: Path, tokenizer) -> str:
    """The processor's template wins over the tokenizer's, as in `processor.apply_chat_template`
    (Qwen2.5-VL ships a tool-use template in tokenizer_config.json and the plain one here)."""
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    js = path / "chat_template.json"
    if js.is_file():
        try:
            return json.loads(js.read_text())["chat_template"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise UserError(f"{js}: unreadable chat template ({exc})") from None
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    raise UserError(f"{path}: no chat template (chat_template.json or tokenizer_config.json)")


def load_tokenizer(path: Path, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            path, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot load the tokenizer ({exc})") from None


def load_image_processor(path: Path, options: RunnerOptions):
    """Always the PIL image processor: it is what every environment has, and the torchvision
    one resizes differently (so scores would depend on what happens to be installed)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    pix: dict[str, int] = {}
    if options.min_pixels is not None:
        pix["min_pixels"] = options.min_pixels
    if options.max_pixels is not None:
        pix["max_pixels"] = options.max_pixels
    return Qwen2VLImageProcessorPil.from_pretrained(path, local_files_only=True, **pix)


def stop_token_ids(checkpoint_eos: Any, stop_tokens: Any, tokenizer) -> list[int]:
    """The checkpoint's eos ids, the family's stop tokens and <|endoftext|>: decoding ends
    at any of them, whichever backend decodes."""
    vocab = tokenizer.get_vocab()
    eos = checkpoint_eos if isinstance(checkpoint_eos, list) else [checkpoint_eos]
    stops = {int(e) for e in eos if e is not None}
    for tok in (*stop_tokens, "<|endoftext|>", tokenizer.eos_token):
        if tok is not None and tok in vocab:
            stops.add(vocab[tok])
    return sorted(stops)


def _generation_notes(checkpoint: dict[str, Any]) -> list[str]:
    """What the neutral greedy settings drop from the checkpoint's generation config that
    changes greedy outputs (the Qwen2/2.5-VL Instruct checkpoints ship repetition_penalty
    1.05)."""
    penalty = checkpoint.get("repetition_penalty")
    if penalty is None or penalty == 1.0:
        return []
    return [
        f"the checkpoint's generation_config.json sets repetition_penalty {penalty}; this run "
        "does not apply it unless asked (--gen-kwargs repetition_penalty=...); each task's "
        "`generation` records the value used"
    ]


class HFRunner(BatchedRunner):
    def __init__(self, model: ResolvedModel, options: RunnerOptions) -> None:
        super().__init__(model.family, options)
        import torch
        import transformers
        from transformers import AutoConfig, GenerationConfig

        self.resolved = model
        path = Path(model.path)
        self.path = path
        self.device = resolve_device(options.device)
        self.dtype = resolve_dtype(options.dtype, self.device)
        trust = bool(options.trust_remote_code)
        try:
            config = AutoConfig.from_pretrained(
                path, local_files_only=True, trust_remote_code=trust
            )
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read the model config ({exc})") from None
        self.model_type = config.model_type
        cls_name = _MODEL_CLASSES.get(config.model_type)
        auto = transformers.AutoModelForImageTextToText
        cls = getattr(transformers, cls_name) if cls_name else auto
        self.attn_implementation = options.attn_implementation or (
            "flash_attention_2"
            if self.device.type == "cuda" and importlib.util.find_spec("flash_attn")
            else "sdpa"
        )
        self.random_weights = options.backend_options.random_weights
        if self.random_weights:
            # Benchmarks only: the architecture of config.json with freshly initialised weights,
            # built on the device (a real-size model without downloading or writing weights).
            with torch.device(self.device):
                self.model = cls._from_config(
                    config, dtype=self.dtype, attn_implementation=self.attn_implementation
                )
        else:
            try:
                with quiet_progress_bars():  # ours is the progress bar the user watches
                    self.model = cls.from_pretrained(
                        path,
                        dtype=self.dtype,
                        attn_implementation=self.attn_implementation,
                        local_files_only=True,
                        trust_remote_code=trust,
                    )
            except OSError as exc:  # missing or unreadable weight files
                raise UserError(f"{path}: cannot load the model weights ({exc})") from None
        self.model.to(self.device).eval()

        self.tokenizer = load_tokenizer(path, trust)
        # The fast tokenizer's Python wrapper is not safe to call from several preparation
        # threads at once ("Already borrowed"); tokenising is cheap next to image decoding.
        self._tok_lock = threading.Lock()
        self.image_processor = load_image_processor(path, options)
        self.patch_size = int(self.image_processor.patch_size)
        self.merge_size = int(self.image_processor.merge_size)
        self.template = _chat_template(path, self.tokenizer)

        vocab = self.tokenizer.get_vocab()
        self.image_token_id = int(config.image_token_id)
        eot = vocab.get("<|endoftext|>")
        self.pad_id = (
            self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eot
        )
        if self.pad_id is None:
            raise UserError(f"{path}: tokenizer has no pad token and no <|endoftext|>")
        self.stop_ids = stop_token_ids(
            getattr(self.model.generation_config, "eos_token_id", None),
            self.family.stop_tokens,
            self.tokenizer,
        )
        self._checkpoint_generation = self.model.generation_config.to_diff_dict()
        self.model.generation_config = GenerationConfig(
            eos_token_id=self.stop_ids, pad_token_id=self.pad_id
        )
        if options.compile:
            self.model.forward = torch.compile(self.model.forward, dynamic=True)

    # ---- preparation (worker threads) ----------------------------------------------------
    def prepare(self, request: Request, index: int) -> Prepared:
        refs = pp.images_of(request.parts)
        images = [pp.decode_image(r) for r in refs]  # bounded; transparency onto white
        with self._tok_lock:
            text = pp.prompt_text(self.family, request, self.template, self.tokenizer)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            opt_ids = None
            if not isinstance(request, GenerateRequest):
                opt_ids = [
                    self.tokenizer(o, add_special_tokens=False)["input_ids"]
                    for o in request.options
                ]
        pixel_values = grid = None
        counts: list[int] = []
        sizes: list[list[int]] = []
        if images:
            enc = self.image_processor(images=images, return_tensors="pt")
            # Cast now (the model casts to this dtype anyway): halves what waiting items hold.
            pixel_values = enc["pixel_values"].to(self.dtype)
            grid = enc["image_grid_thw"]
            counts = [int(g.prod()) // self.merge_size**2 for g in grid]
            sizes = [pp.input_size(g.tolist(), self.patch_size) for g in grid]
        ids, types = pp.expand_image_tokens(ids, self.image_token_id, counts)
        for k, o in enumerate(opt_ids or []):
            if not o:
                raise ValueError(f"option {k} ({request.options[k]!r}) is empty after tokenisation")
        meta: dict[str, Any] = {"prompt_tokens": len(ids)}
        if sizes:
            meta["input_sizes"] = sizes
        return Prepared(
            request,
            index,
            num_tokens=len(ids),
            inputs=_Inputs(ids, types, pixel_values, grid, opt_ids),
            meta=meta,
        )

    # ---- compute (main thread) -----------------------------------------------------------
    def _collate(self, batch: list[Prepared]) -> dict[str, Any]:
        import torch

        items: list[_Inputs] = [p.inputs for p in batch]
        padded = pp.left_pad([x.ids for x in items], [x.types for x in items], self.pad_id)
        enc: dict[str, Any] = {
            "input_ids": torch.tensor(padded.ids, dtype=torch.long, device=self.device),
            "attention_mask": torch.tensor(padded.mask, dtype=torch.long, device=self.device),
            "mm_token_type_ids": torch.tensor(padded.types, dtype=torch.long, device=self.device),
        }
        pix = [x.pixel_values for x in items if x.pixel_values is not None]
        if pix:
            enc["pixel_values"] = torch.cat(pix).to(self.device, self.dtype)
            enc["image_grid_thw"] = torch.cat([x.grid for x in items if x.grid is not None]).to(
                self.device
            )
        return enc

    def generate_batch(self, batch: list[Prepared], generation: Generation) -> list[GenOutput]:
        import torch

        enc = self._collate(batch)
        kwargs: dict[str, Any] = dict(
            max_new_tokens=generation.max_new_tokens,
            min_new_tokens=generation.min_new_tokens or None,
            do_sample=generation.do_sample,
            num_beams=generation.num_beams,
            repetition_penalty=generation.repetition_penalty,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            use_cache=True,
        )
        if generation.num_beams > 1:  # length_penalty means nothing to greedy decoding
            kwargs["length_penalty"] = generation.length_penalty
        if generation.stop:
            kwargs.update(stop_strings=list(generation.stop), tokenizer=self.tokenizer)
        if generation.do_sample:
            torch.manual_seed(self.options.seed)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        keep_ids = self.options.backend_options.output_token_ids
        results = []
        for row in new:
            removed: list[str] = []
            text, n_new = pp.answer_text(row, self.stop_ids, generation.stop, self._decode, removed)
            # Debug/test aid: the exact tokens, to compare runs token for token.
            meta: dict[str, Any] = {"output_token_ids": row[:n_new]} if keep_ids else {}
            if removed:
                meta["answer_notes"] = removed
            results.append(GenOutput(text, new_tokens=n_new, meta=meta))
        return results

    def _decode(self, ids: list[int]) -> str:
        # Special tokens are decoded as text and removed by pp.final_text, as a server's
        # text is: skipping them here would join the bytes of a character they split.
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    @functools.cached_property
    def _cache_kwarg(self) -> str:
        """The forward() argument that takes a Cache object in this transformers version."""
        params = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def score_batch(self, batch: list[Prepared]) -> list[tuple[OptionScore, ...]]:
        import torch
        from transformers import DynamicCache

        enc = self._collate(batch)
        core = self.model.model
        with torch.inference_mode():
            position_ids, _ = core.get_rope_index(
                enc["input_ids"],
                mm_token_type_ids=enc["mm_token_type_ids"],
                image_grid_thw=enc.get("image_grid_thw"),
                attention_mask=enc["attention_mask"],
            )
            # An explicit Cache object, passed under the name this transformers version takes
            # (`cache` since 5.2x; `past_key_values`, deprecated there, is removed in 5.40).
            cache = DynamicCache(config=self.model.config.get_text_config())
            out = self.model(
                **enc,
                position_ids=position_ids,
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kwarg: cache},
            )
            first_lp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)

            rows_item: list[int] = []
            opts: list[list[int]] = []
            for i, p in enumerate(batch):
                for o in p.inputs.options:
                    rows_item.append(i)
                    opts.append(o)
            item_idx = torch.tensor(rows_item, device=self.device)
            opt_ids, opt_mask = pp.right_pad(opts, self.pad_id)
            opt_ids_t = torch.tensor(opt_ids, dtype=torch.long, device=self.device)
            # log p(first option token | prompt) comes from the prompt's last position.
            lp = first_lp[item_idx].gather(1, opt_ids_t[:, :1])  # (R, 1)
            width = opt_ids_t.shape[1]
            if width > 1:
                cache.reorder_cache(item_idx)  # one copy of the prompt's cache per option
                feed = opt_ids_t[:, :-1]
                mask = torch.cat(
                    [
                        enc["attention_mask"][item_idx],
                        torch.tensor(opt_mask, dtype=torch.long, device=self.device)[:, :-1],
                    ],
                    dim=1,
                )
                # Text after the prompt continues from the prompt's largest position.
                start = position_ids.amax(dim=(0, 2))[item_idx] + 1  # (R,)
                pos = start[:, None] + torch.arange(width - 1, device=self.device)[None]
                pos = pos[None].expand(3, -1, -1)
                out2 = self.model(
                    input_ids=feed,
                    attention_mask=mask,
                    position_ids=pos,
                    use_cache=True,
                    **{self._cache_kwarg: cache},
                )
                rest = torch.log_softmax(out2.logits.float(), dim=-1).gather(
                    2, opt_ids_t[:, 1:, None]
                )[..., 0]  # (R, width-1)
                lp = torch.cat([lp, rest], dim=1)
            lp = lp * torch.tensor(opt_mask, dtype=lp.dtype, device=self.device)
            sums = lp.sum(dim=1).tolist()

        results: list[tuple[OptionScore, ...]] = []
        r = 0
        for p in batch:
            scores = []
            for o in p.inputs.options:
                scores.append(OptionScore.from_sum(sums[r], len(o)))
                r += 1
            results.append(tuple(scores))
        return results

    def provenance(self) -> dict[str, Any]:
        import torch
        import transformers

        return {
            "backend": "hf-transformers",
            "model_path": str(self.path),
            "revision": self.resolved.revision,
            "preset": self.resolved.preset,
            "family": self.family.name,
            "model_type": self.model_type,
            "model_class": type(self.model).__name__,
            "dtype": str(self.dtype).replace("torch.", ""),
            "device": str(self.device),
            "attn_implementation": self.attn_implementation,
            "compile": bool(self.options.compile),
            "random_weights": self.random_weights,
            "image_processor": type(self.image_processor).__name__,
            "image_processor_backend": "pil",
            "image_conversion": pp.IMAGE_CONVERSION["white"],
            "min_pixels": self.image_processor.size.get("shortest_edge"),
            "max_pixels": self.image_processor.size.get("longest_edge"),
            "chat_template_sha256": hashlib.sha256(self.template.encode()).hexdigest()[:16],
            "stop_token_ids": self.stop_ids,
            "checkpoint_generation_config_ignored": self._checkpoint_generation,
            "notes": _generation_notes(self._checkpoint_generation),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover
            pass
