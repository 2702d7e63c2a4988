"""OpenAI-compatible backend: the harness's requests sent to a served model (`vllm serve`,
SGLang, `transformers serve`, a hosted endpoint) as chat completions.

What keeps answers comparable with the in-process backends:
- the user turn is the family adapter's `chat_messages` with each image as a base64 data URL
  of the file's own bytes (never re-encoded), so a server applying the checkpoint's chat
  template renders the same prompt text the transformers backend renders;
- decoding is greedy (temperature 0) with the task's max_new_tokens, stop strings and the run's
  seed; what the chat API cannot express (beam search, min_new_tokens unless the server takes
  vLLM's `min_tokens`) is written into the task's notes in the results.

Transport: the `openai` client does the HTTP, the per-request timeout and the retries
(exponential backoff with jitter on 408/409/429/5xx, timeouts and dropped connections). A
failure that outlives the retries and is not the item's fault (server gone, rate limited,
5xx) stops the run instead of recording the item as failed, so that running the same command
again resumes exactly the missing items; a 4xx about one item is that item's error.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import UserError
from ..types import (
    GenerateRequest,
    Generation,
    ImageRef,
    OptionScore,
    Response,
    ScoreRequest,
)
from . import preprocess as pp
from .backends import setting_notes
from .base import (
    Runner,
    RunnerOptions,
    RunnerStats,
    check_generate_requests,
    check_score_requests,
)
from .families import MODEL_TYPES, Family
from .presets import PRESETS, ResolvedModel, family_of

log = logging.getLogger(__name__)

# Qwen2.5-VL answers boxes in pixels of the image as resized by the server's processor; the
# server does not say that size, so it is computed here with the processor's own rule and its
# default pixel limits (or --min-pixels/--max-pixels). (factor, min_pixels, max_pixels)
_RESIZE_RULES = {"qwen2.5-vl": (28, 56 * 56, 28 * 28 * 16384)}


class EndpointError(UserError):
    """The server cannot answer (unreachable, rate limited, failing) after the retries."""


@dataclass(frozen=True)
class EndpointOptions:
    base_url: str
    api_model: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    request_timeout: float = 600.0
    max_retries: int = 5
    # vLLM and SGLang accept `min_tokens`; the OpenAI API itself rejects unknown fields.
    send_min_tokens: bool = False
    # The server returns prompt log-probs (vLLM's `prompt_logprobs` with
    # `continue_final_message`): option-scoring tasks can then run.
    prompt_logprobs: bool = False
    # Send each image file's own bytes instead of the pixels the family's processor makes of
    # them (the server then resizes with its own processor, which may differ).
    original_images: bool = False

    def __post_init__(self) -> None:
        check_base_url(self.base_url)
        if not self.api_model:
            raise UserError("--api-model: the model name the server serves is required")
        if self.concurrency < 1:
            raise UserError(f"--concurrency: must be >= 1, got {self.concurrency}")
        if not (self.request_timeout > 0 and math.isfinite(self.request_timeout)):
            raise UserError(
                f"--request-timeout: must be a finite number of seconds > 0, "
                f"got {self.request_timeout}"
            )
        if self.max_retries < 0:
            raise UserError(f"--max-retries: must be >= 0, got {self.max_retries}")


def open_endpoint(model: ResolvedModel, options: RunnerOptions) -> Runner:
    """The runner for `--backend openai` (the backend table's loader); its flags arrive in
    `options.backend_options` (declared in the backend table), and `--api-model` defaults to
    `--model`."""
    given = options.backend_options
    if not given.base_url:
        raise UserError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
    endpoint = EndpointOptions(
        base_url=given.base_url,
        api_model=given.api_model or model.spec,
        api_key_env=given.api_key_env,
        concurrency=given.concurrency,
        request_timeout=given.request_timeout,
        max_retries=given.max_retries,
        send_min_tokens=given.api_min_tokens,
        prompt_logprobs=given.api_prompt_logprobs,
        original_images=given.api_original_images,
    )
    return OpenAIRunner(model, options, endpoint)


def check_base_url(url: str) -> None:
    """http(s)://host[:port][/path], checked here so a typo is one line, not a traceback from
    the HTTP library at the first request."""
    bad = f"--base-url: expected http(s)://host[:port]/v1, got {url!r}"
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
        raise UserError(bad)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0..65535
    except ValueError as exc:
        raise UserError(f"{bad} ({exc})") from None
    if not parts.hostname:
        raise UserError(bad)


def endpoint_family(spec: str, family: str | None = None) -> Family:
    """No local weights are needed for a served model, so a Hub id not in the local cache is
    fine: its family then comes from its name (or from --family)."""
    return family_of(spec, family, otherwise=_family_from_name)


def endpoint_model(spec: str, family: str | None = None) -> ResolvedModel:
    """The model as far as the harness needs it for a served endpoint: its family (prompts,
    box format)."""
    preset = spec if spec in PRESETS else None
    return ResolvedModel(spec, Path(spec), endpoint_family(spec, family), None, preset)


def _family_from_name(spec: str) -> Family:
    name = spec.lower().replace("_", "-")
    for key, tag in (
        ("qwen3-vl", "qwen3_vl"),
        ("qwen2.5-vl", "qwen2_5_vl"),
        ("qwen2-5-vl", "qwen2_5_vl"),
        ("qwen2-vl", "qwen2_vl"),
    ):
        if key in name:
            return MODEL_TYPES[tag]
    raise UserError(
        f"--model {spec!r}: cannot tell the model family from the name; "
        f"pass --family (qwen2-vl, qwen2.5-vl or qwen3-vl)"
    )


# ---- pure request building ---------------------------------------------------------------
def image_data_url(ref: ImageRef) -> str:
    """The image file's own bytes as a data URL (re-encoding would change the pixels)."""
    from PIL import Image as PILImage

    data = ref.read_bytes()
    with PILImage.open(io.BytesIO(data)) as im:
        mime = PILImage.MIME.get(im.format or "", "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def chat_messages(
    family: Family, request: GenerateRequest | ScoreRequest, image_urls: Sequence[str]
) -> list:
    """The family adapter's messages with each image part as an `image_url` part, in order."""
    urls = iter(image_urls)
    out = []
    for msg in family.chat_messages(request.parts, request.system):
        parts = []
        for part in msg["content"]:
            if part["type"] == "image":
                parts.append({"type": "image_url", "image_url": {"url": next(urls)}})
            else:
                parts.append(part)
        if msg["role"] == "system":  # plain string: every server takes it, templates agree
            out.append({"role": "system", "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": msg["role"], "content": parts})
    if next(urls, None) is not None:
        raise ValueError("more images than image parts in the request")
    return out


def sampling_params(
    generation: Generation, seed: int, send_min_tokens: bool = False
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Chat-completions arguments, vendor extras (`extra_body`) and notes on what could not be
    sent."""
    params: dict[str, Any] = {
        "max_tokens": generation.max_new_tokens,
        "temperature": 1.0 if generation.do_sample else 0.0,
        "seed": seed,
        "n": 1,
    }
    if generation.stop:
        params["stop"] = list(generation.stop)
    extra: dict[str, Any] = {}
    notes: list[str] = []
    if generation.min_new_tokens:
        if send_min_tokens:
            extra["min_tokens"] = generation.min_new_tokens
        else:
            notes.append(
                f"min_new_tokens={generation.min_new_tokens} not applied: the chat completions "
                "API has no minimum length (pass --api-min-tokens to a vLLM or SGLang server)"
            )
    if generation.repetition_penalty != 1.0:
        # Like min_tokens, a vLLM / SGLang sampling extension the OpenAI API itself lacks.
        if send_min_tokens:
            extra["repetition_penalty"] = generation.repetition_penalty
        else:
            notes.append(
                f"repetition_penalty={generation.repetition_penalty} not applied: the chat "
                "completions API has none (pass --api-min-tokens to a vLLM or SGLang server)"
            )
    if generation.num_beams > 1:
        notes.append(
            f"num_beams={generation.num_beams} (length_penalty={generation.length_penalty}) "
            "not applied: the chat completions API has no beam search; decoding was greedy"
        )
    return params, extra, notes


def option_logprob(prompt_logprobs: Sequence[Any], option: str) -> tuple[float, int]:
    """(sum of log-probs, token count) of `option` at the end of a prompt, from vLLM-style
    `prompt_logprobs` (one entry per prompt token, {token_id: {logprob, decoded_token, ...}},
    holding the prompt's own token only, as asked with `prompt_logprobs: 0`). The option's
    tokens are the trailing ones whose decoded text adds up to it."""
    text, total = "", 0.0
    for n, entry in enumerate(reversed(prompt_logprobs), start=1):
        if not entry or len(entry) != 1:
            break
        (tok,) = entry.values()
        text = str(tok["decoded_token"]) + text
        total += float(tok["logprob"])
        if text == option:
            return total, n
        if not option.endswith(text):
            break
    raise ValueError(f"the prompt's last tokens do not spell the option {option!r}")


def local_input_size(
    family: Family, ref: ImageRef, min_pixels: int | None, max_pixels: int | None
) -> list[int] | None:
    """[width, height] the server's processor resizes the image to, for families whose boxes
    are in those pixels; None for the others."""
    rule = _RESIZE_RULES.get(family.name)
    if rule is None:
        return None
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    factor, lo, hi = rule
    w, h = ref.size()
    rh, rw = smart_resize(
        h, w, factor=factor, min_pixels=min_pixels or lo, max_pixels=max_pixels or hi
    )
    return [rw, rh]


# ---- what is sent and what is kept ---------------------------------------------------------
# Default image-processor settings per family, for a served model with no local checkpoint
# (its preprocessor_config.json is used whenever the checkpoint is here).
_PROCESSOR_DEFAULTS = {
    "qwen2-vl": {
        "patch_size": 14,
        "size": {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16384},
    },
    "qwen2.5-vl": {
        "patch_size": 14,
        "size": {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16384},
    },
    "qwen3-vl": {"patch_size": 16, "size": {"shortest_edge": 65536, "longest_edge": 16777216}},
}
# What is stored of one answer: enough for any real answer of max_tokens tokens (a token is at
# most a few dozen characters); a server sending more is cut, with a note on the item.
ANSWER_CHARS_PER_TOKEN = 64
MIN_ANSWER_CHARS = 4096
# Where each vendor extension comes from, to name the flag when a server refuses it.
_EXTENSION_FLAGS = {
    "min_tokens": "--api-min-tokens",
    "repetition_penalty": "--api-min-tokens",
    "prompt_logprobs": "--api-prompt-logprobs",
    "continue_final_message": "--api-prompt-logprobs",
    "add_generation_prompt": "--api-prompt-logprobs",
}


def image_processor_for(model: ResolvedModel, options: RunnerOptions) -> tuple[Any, str]:
    """The family's PIL image processor as the in-process backends load it: from the local
    checkpoint when --model names one (a folder, a preset, a cached Hub id), else with the
    family's published defaults. Returns (processor, where its settings came from)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from .hf import load_image_processor
    from .presets import resolve_model

    try:
        local = resolve_model(model.spec, model.family.name)
        return load_image_processor(Path(local.path), options), str(local.path)
    except (UserError, OSError, ValueError):
        pass
    kw = dict(_PROCESSOR_DEFAULTS[model.family.name])
    size = dict(kw.pop("size"))
    if options.min_pixels is not None:
        size["shortest_edge"] = options.min_pixels
    if options.max_pixels is not None:
        size["longest_edge"] = options.max_pixels
    return Qwen2VLImageProcessorPil(size=size, **kw), f"{model.family.name} defaults"


def png_data_url(image) -> str:
    """A PIL image as a lossless PNG data URL."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class Redactor:
    """Removes the API key from any text the server sends back (an echoed Authorization
    header): messages, logs and saved answers never carry it."""

    def __init__(self, secret: str | None) -> None:
        self._secret = secret if secret and len(secret) >= 4 else None

    def __call__(self, text: str) -> str:
        if self._secret is None or self._secret not in text:
            return text
        return text.replace(self._secret, "[API key redacted]")


def server_words(body: bytes | str, limit: int = 300) -> str:
    """The server's own reason, one line: `error.message`, `detail` or `message` of a JSON
    body, else the body's text (bytes that are not UTF-8 shown escaped)."""
    text = body.decode("utf-8", "backslashreplace") if isinstance(body, bytes) else body
    words: Any = text
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        err = parsed.get("error")
        for cand in (
            err.get("message") if isinstance(err, dict) else err,
            parsed.get("detail"),
            parsed.get("message"),
        ):
            if cand:
                words = cand if isinstance(cand, str) else json.dumps(cand)[:limit]
                break
    line = " ".join(str(words).split())
    return (line[:limit] + "...") if len(line) > limit else (line or "(empty body)")


def brief_error(
    exc: Exception, timeout: float, redact: Redactor, flag: str = "--request-timeout"
) -> str:
    """One line: an OpenAI client error's kind and status and the server's own words, key
    redacted (the backend's and the judge's errors alike)."""
    import openai

    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    response = getattr(exc, "response", None)
    if isinstance(exc, openai.APITimeoutError):
        return f"{kind}: no complete answer within {timeout:g}s ({flag})"
    if status and response is not None:
        try:
            msg = server_words(response.content)
        except Exception:  # the body could not be read
            msg = str(getattr(exc, "message", "") or exc)
    else:
        msg = " ".join(str(getattr(exc, "message", "") or exc).split())[:300]
    msg = redact(msg)
    return f"{kind} {status}: {msg}" if status else f"{kind}: {msg}"


class BadAnswer(ValueError):
    """A 2xx answer the harness cannot use: that item's error (retried on a rerun)."""


def parse_body(blob: bytes) -> dict[str, Any]:
    """The JSON object of an answer, or BadAnswer with the server's words."""
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadAnswer(
            f"the server's answer is not UTF-8 (byte {exc.start}): {server_words(blob, 120)}"
        ) from None
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        raise BadAnswer(f"the server's answer is {reason}: {server_words(text, 120)}") from None
    if not isinstance(body, dict):
        raise BadAnswer(f"the server's answer is a JSON {type(body).__name__}, not an object")
    if body.get("error"):
        raise BadAnswer(f"the server answered with an error: {server_words(text)}")
    return body


def completion_text(body: dict[str, Any]) -> tuple[str, str | None, int]:
    """(content, finish_reason, number of choices) of a chat completion body."""
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise BadAnswer(f"the server's answer has no choices: {server_words(json.dumps(body))}")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise BadAnswer("the server's answer has no message in its first choice")
    content = message.get("content")
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise BadAnswer(
            f"the server's message content is a JSON {type(content).__name__}, not a string"
        )
    finish = choice.get("finish_reason")
    return content, finish if isinstance(finish, str) else None, len(choices)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def deadline_client(seconds: float):
    """The HTTP client the OpenAI client is given: every request (connect, send, wait, read)
    must end within `seconds`, or its socket is shut and the request fails as a timeout. The
    library's own timeout is per read only, so a server trickling a byte a second would hold
    a request forever. Connections are not kept alive, so each request owns its socket."""
    import importlib

    import openai

    base = next(c for c in openai.DefaultHttpxClient.__mro__[1:] if c.__name__ == "Client")
    http = importlib.import_module(base.__module__.split(".")[0])

    class Watch:
        def __init__(self) -> None:
            self.sockets: list[socket.socket] = []
            self.expired = False
            self.lock = threading.Lock()
            self.timer = threading.Timer(seconds, self.expire)
            self.timer.daemon = True

        def trace(self, name: str, info: dict[str, Any]) -> None:
            if name.endswith("connect_tcp.complete") and info.get("return_value") is not None:
                sock = info["return_value"].get_extra_info("socket")
                with self.lock:
                    self.sockets.append(sock)
                    if self.expired:
                        _shut(sock)

        def expire(self) -> None:
            with self.lock:
                self.expired = True
                for sock in self.sockets:
                    _shut(sock)

        def error(self, exc: Exception) -> Exception:
            if not self.expired:
                return exc
            return http.ReadTimeout(f"no complete answer within {seconds:g}s (--request-timeout)")

    class Body(http.SyncByteStream):
        def __init__(self, inner, watch: Watch) -> None:
            self.inner, self.watch = inner, watch

        def __iter__(self):
            try:
                yield from self.inner
            except Exception as exc:
                raise self.watch.error(exc) from None

        def close(self) -> None:
            self.watch.timer.cancel()
            self.inner.close()

    class Transport(http.BaseTransport):
        def __init__(self) -> None:
            self.inner = http.HTTPTransport(limits=http.Limits(max_keepalive_connections=0))

        def handle_request(self, request):
            watch = Watch()
            request.extensions = {**request.extensions, "trace": watch.trace}
            watch.timer.start()
            try:
                response = self.inner.handle_request(request)
            except Exception as exc:
                watch.timer.cancel()
                raise watch.error(exc) from None
            response.stream = Body(response.stream, watch)
            return response

        def close(self) -> None:
            self.inner.close()

    return openai.DefaultHttpxClient(transport=Transport())


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# ---- the runner ----------------------------------------------------------------------------
class OpenAIRunner(Runner):
    supports_option_scoring = False

    def __init__(
        self, model: ResolvedModel, options: RunnerOptions, endpoint: EndpointOptions
    ) -> None:
        import openai

        if "chat" not in model.family.prompt_keys:
            raise UserError(
                f"family {model.family.name!r} is evaluated with the paper's raw prompts, which "
                "a chat completions endpoint cannot take; use the transformers backend"
            )
        self.family = model.family
        self.supports_option_scoring = endpoint.prompt_logprobs
        self.resolved = model
        self.options = options
        self.endpoint = endpoint
        self.stats = RunnerStats()
        self.retries = 0
        self.requests_sent = 0
        self.response_models: set[str] = set()
        self.system_fingerprints: set[str] = set()
        self._lock = threading.Lock()
        # The key is read here and handed to the client only: never stored on the runner,
        # never in provenance, results or logs. Local servers take any key.
        api_key = os.environ.get(endpoint.api_key_env) or "EMPTY"
        self.redact = Redactor(os.environ.get(endpoint.api_key_env))
        self.client = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=api_key,
            timeout=endpoint.request_timeout,
            max_retries=endpoint.max_retries,
            http_client=deadline_client(endpoint.request_timeout),
        )
        # Images go out as the pixels the in-process backends feed the model, at the size the
        # processor gives them, so the server's own resize (torchvision or PIL) is the identity.
        self.image_processor, self.image_settings = (
            (None, "") if endpoint.original_images else image_processor_for(model, options)
        )
        self.server_model = self._check_model()

    def _check_model(self) -> dict[str, Any]:
        """Before any item: the server answers and serves `api_model`."""
        import openai

        url = self.endpoint.base_url
        try:
            served = list(self.client.models.list())
        except openai.NotFoundError:
            return {}  # a server without /models: the first request will tell
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise EndpointError(
                f"{url}: the server refused the API key from ${self.endpoint.api_key_env} "
                f"({exc.status_code})"
            ) from None
        except openai.APIError as exc:
            raise EndpointError(
                f"{url}: cannot list the served models ({self._brief(exc)})"
            ) from None
        except Exception as exc:  # a body the client could not read (HTML, deep JSON, ...)
            raise EndpointError(
                f"{url}: cannot list the served models ({type(exc).__name__}: "
                f"{self.redact(str(exc))[:300]})"
            ) from None
        ids = [m.id for m in served]
        match = next((m for m in served if m.id == self.endpoint.api_model), None)
        if match is None:
            raise EndpointError(
                f"{url}: model {self.endpoint.api_model!r} is not served "
                f"(served: {', '.join(ids) or 'none'}); pass one of them as --api-model"
            )
        info = {"id": match.id, "owned_by": getattr(match, "owned_by", None)}
        for key in ("root", "max_model_len"):  # vLLM adds these
            value = (getattr(match, "model_extra", None) or {}).get(key)
            if value is not None:
                info[key] = value
        return info

    # ---- Runner API ----------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> Iterator[Response]:
        check_generate_requests(requests)
        for r in requests:
            if r.style != "chat":
                raise UserError(
                    f"item {r.id!r}: raw prompts cannot be sent as chat completions; "
                    "use the transformers backend"
                )
        return self._run(list(requests))

    def score_options(self, requests: Sequence[ScoreRequest]) -> Iterator[Response]:
        # The evaluator refuses scoring tasks up front (supports_option_scoring); this is the
        # backstop for direct callers.
        if not self.supports_option_scoring:
            raise UserError(
                "the OpenAI-compatible backend cannot score options unless the server returns "
                "prompt log-probs (--api-prompt-logprobs); use the task's generation variant"
            )
        check_score_requests(requests)
        return self._run(list(requests))

    def notes(self, requests: Sequence[GenerateRequest | ScoreRequest]) -> list[str]:
        first = requests[0] if requests else None
        return self.generation_notes(first.generation) if isinstance(first, GenerateRequest) else []

    def generation_notes(self, generation: Generation) -> list[str]:
        notes = sampling_params(generation, self.options.seed, self.endpoint.send_min_tokens)[2]
        if self.image_processor is None:
            notes.append(
                "images sent as their files' own bytes (--api-original-images): the server "
                "resizes them with its own processor, which may differ from the harness's"
            )
            if self.options.min_pixels is not None or self.options.max_pixels is not None:
                notes.append(
                    "--min-pixels/--max-pixels are not sent to the server: it resizes images "
                    "with its own processor settings"
                )
        else:
            notes.append(
                "images sent as lossless PNG already resized by the family's image processor "
                f"({self.image_settings}), so the server's resize is the identity"
            )
        return notes + setting_notes(self.options)

    # ---- machinery -----------------------------------------------------------------------
    def _run(self, requests: Sequence[GenerateRequest | ScoreRequest]) -> Iterator[Response]:
        """At most `concurrency` requests in flight; each response is yielded the moment it
        arrives. On a fatal error nothing new is sent, the requests in flight are awaited
        (their answers are still yielded, so they are saved), then the error is raised."""
        if not requests:
            return
        todo = iter(requests)
        pending: set[Future[Response]] = set()
        fatal: EndpointError | None = None
        pool = ThreadPoolExecutor(self.endpoint.concurrency, thread_name_prefix="qwenvl-api")
        t0 = time.perf_counter()
        try:
            while True:
                while fatal is None and len(pending) < self.endpoint.concurrency:
                    r = next(todo, None)
                    if r is None:
                        break
                    pending.add(pool.submit(self._ask, r))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    try:
                        response = f.result()
                    except EndpointError as exc:
                        fatal = fatal or exc
                        continue
                    self.stats.items += 1
                    self.stats.errors += response.error is not None
                    self.stats.seconds = time.perf_counter() - t0
                    yield response
        finally:
            self.stats.seconds = time.perf_counter() - t0
            pool.shutdown(wait=False, cancel_futures=True)
        if fatal is not None:
            raise fatal

    def _ask(self, request: GenerateRequest | ScoreRequest) -> Response:
        """One item, on a worker thread. Returns the item's Response (with `error` for a
        problem of this item) or raises EndpointError for a problem of the server."""
        try:
            urls, meta = self._images(request)
            messages = chat_messages(self.family, request, urls)
        except Exception as exc:  # unreadable image: this item only
            log.warning("item %s: preparation failed: %s", request.id, exc)
            return Response(request.id, error=f"{type(exc).__name__}: {exc}")
        if isinstance(request, ScoreRequest):
            return self._score(request, messages, meta)
        params, extra, _ = sampling_params(
            request.generation, self.options.seed, self.endpoint.send_min_tokens
        )
        raw = self._call(request.id, messages, params, extra)
        if isinstance(raw, str):
            return Response(request.id, meta=meta, error=raw)
        try:
            body = parse_body(raw.http_response.content)
            content, finish, n_choices = completion_text(body)
        except BadAnswer as exc:
            error = self.redact(str(exc))
            log.warning("item %s: %s", request.id, error)
            return Response(request.id, meta=meta, error=error)
        notes: list[str] = []
        clean = self.redact(content)
        if clean != content:
            notes.append("the API key echoed in the answer was redacted")
        cap = max(MIN_ANSWER_CHARS, ANSWER_CHARS_PER_TOKEN * request.generation.max_new_tokens)
        if len(clean) > cap:
            notes.append(
                f"answer cut to {cap:,} of {len(clean):,} characters: more than "
                f"max_tokens={request.generation.max_new_tokens} tokens can spell"
            )
            clean = clean[:cap]
        text, removed = pp.final_text(clean, request.generation.stop)
        notes.extend(removed)
        if n_choices > 1:
            notes.append(f"the server sent {n_choices} choices for n=1; the first was kept")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        prompt_tokens = _int(usage.get("prompt_tokens"))
        with self._lock:
            if isinstance(body.get("model"), str):
                self.response_models.add(body["model"])
            if isinstance(body.get("system_fingerprint"), str):
                self.system_fingerprints.add(body["system_fingerprint"])
            self.stats.prompt_tokens += prompt_tokens or 0
            self.stats.new_tokens += _int(usage.get("completion_tokens")) or 0
        if prompt_tokens is not None:
            meta["prompt_tokens"] = prompt_tokens
        if finish:
            meta["finish_reason"] = finish
        if raw.retries_taken:
            meta["retries"] = raw.retries_taken
        if notes:
            meta["answer_notes"] = notes
        return Response(request.id, text=text, meta=meta)

    def _images(self, request: GenerateRequest | ScoreRequest) -> tuple[list[str], dict]:
        """The request's images as data URLs, and the item's meta (the sizes the model sees
        where they are known)."""
        refs = pp.images_of(request.parts)
        meta: dict[str, Any] = {}
        if self.image_processor is None:
            sizes = [
                local_input_size(self.family, r, self.options.min_pixels, self.options.max_pixels)
                for r in refs
            ]
            if sizes and all(s is not None for s in sizes):
                meta["input_sizes"] = sizes
            return [image_data_url(r) for r in refs], meta
        urls, sizes = [], []
        for ref in refs:
            image, size = pp.resized(pp.decode_image(ref), self.image_processor)
            urls.append(png_data_url(image))
            sizes.append(size)
        if sizes:
            meta["input_sizes"] = sizes
        return urls, meta

    def _score(self, request: ScoreRequest, messages: list, meta: dict[str, Any]) -> Response:
        """Each option as the assistant's turn, continued rather than closed, scored by the
        prompt log-probs of its tokens: the transformers backend's definition (the option's
        tokens right after the generation prompt)."""
        params = {"max_tokens": 1, "temperature": 0.0, "seed": self.options.seed, "n": 1}
        extra = {
            "prompt_logprobs": 0,
            "add_generation_prompt": False,
            "continue_final_message": True,
        }
        scores = []
        for option in request.options:
            turn = [*messages, {"role": "assistant", "content": option}]
            raw = self._call(request.id, turn, params, extra)
            if isinstance(raw, str):
                return Response(request.id, meta=meta, error=raw)
            try:
                body = parse_body(raw.http_response.content)
                logprobs = body.get("prompt_logprobs")
                if not isinstance(logprobs, list):
                    raise BadAnswer(
                        "the server's answer has no prompt_logprobs list (does it take "
                        "--api-prompt-logprobs?)"
                    )
                total, n = option_logprob(logprobs, option)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                error = self.redact(f"option {option!r}: {exc}")
                return Response(request.id, meta=meta, error=error)
            scores.append(OptionScore.from_sum(total, n))
            usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
            with self._lock:
                if isinstance(body.get("model"), str):
                    self.response_models.add(body["model"])
                self.stats.prompt_tokens += _int(usage.get("prompt_tokens")) or 0
        return Response(request.id, options=tuple(scores), meta=meta)

    def _call(self, item: str, messages: list, params: dict[str, Any], extra: dict[str, Any]):
        """One chat completion (the client retries): the raw response, or a one-line error
        for a 4xx about this item's request. Raises EndpointError for a problem of the
        server."""
        import openai

        url = self.endpoint.base_url
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=self.endpoint.api_model,
                messages=messages,
                extra_body=extra or None,
                **params,
            )
        except (
            openai.APIConnectionError,
            openai.RateLimitError,
            openai.InternalServerError,
        ) as exc:
            self._count(self.endpoint.max_retries + 1)
            raise EndpointError(
                f"{url}: item {item}: {self._brief(exc)} after {self.endpoint.max_retries} "
                "retries; nothing was recorded for the unanswered items: run the same command "
                "again to resume"
            ) from None
        except (
            openai.AuthenticationError,
            openai.PermissionDeniedError,
            openai.NotFoundError,
        ) as exc:
            self._count(1)
            raise EndpointError(f"{url}: item {item}: {self._brief(exc)}") from None
        except openai.APIStatusError as exc:  # 400, 413, 422: about this item's request
            self._count(1)
            error = self._brief(exc) + refused_extension_hint(self._brief(exc), extra)
            log.warning("item %s: %s", item, error)
            return error
        except openai.APIError as exc:  # an answer the client could not read
            self._count(1)
            error = self._brief(exc)
            log.warning("item %s: %s", item, error)
            return error
        self._count(raw.retries_taken + 1, retries=raw.retries_taken)
        return raw

    def _brief(self, exc: Exception) -> str:
        return brief_error(exc, self.endpoint.request_timeout, self.redact)

    def _count(self, attempts: int, retries: int | None = None) -> None:
        with self._lock:
            self.requests_sent += attempts
            self.retries += attempts - 1 if retries is None else retries
            self.stats.batches += 1

    def provenance(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "backend": "openai",
            "base_url": self.endpoint.base_url,
            "api_model": self.endpoint.api_model,
            "server_model": self.server_model,
            "response_models": sorted(self.response_models),
            "system_fingerprints": sorted(self.system_fingerprints),
            "api_key_env": self.endpoint.api_key_env,  # the variable's name, never its value
            "client": "openai",
            "client_version": version("openai"),
            "family": self.family.name,
            "dtype": "server",
            "device": "remote",
            "concurrency": self.endpoint.concurrency,
            "request_timeout": self.endpoint.request_timeout,
            "max_retries": self.endpoint.max_retries,
            "send_min_tokens": self.endpoint.send_min_tokens,
            "prompt_logprobs": self.endpoint.prompt_logprobs,
            "images_sent": (
                "file bytes"
                if self.image_processor is None
                else f"PNG resized by the image processor ({self.image_settings})"
            ),
            "requests_sent": self.requests_sent,
            "retries": self.retries,
        }

    def close(self) -> None:
        self.client.close()


def refused_extension_hint(words: str, extra: dict[str, Any]) -> str:
    """When a server refuses a vendor extension the harness sent: which flag sent it and
    what to do."""
    named = [k for k in extra if k in words] or (
        list(extra)
        if re.search(r"unexpected|extra|unrecogni[sz]ed|not permitted", words, re.I)
        else []
    )
    flags = sorted({_EXTENSION_FLAGS[k] for k in named if k in _EXTENSION_FLAGS})
    if not flags:
        return ""
    return (
        f" (the server refused {', '.join(sorted(named))}, sent because of {' and '.join(flags)}:"
        f" this server does not take vLLM's extensions; run without {' and '.join(flags)})"
    )
