"""A small but real OpenAI-compatible HTTP server for the backend's tests.

`transformers serve` cannot load the Qwen2-VL family on this project's CPU test machines: its
processor needs torchvision, and no CPU build of torchvision matching the CPU torch wheel is
installable (the PyPI wheel fails with "operator torchvision::nms does not exist"). This
server takes its place: `POST /v1/chat/completions` (non-streaming), `GET /v1/models`,
`GET /health`, `GET /stats`, answered by the project's transformers runner on a local
checkpoint. Chat messages are turned back into a request the way a serving engine does it:
text parts as text, each `image_url` data URL decoded to the image's bytes; system turn;
max_tokens, min_tokens (vLLM's extension), stop, temperature, seed.

    python -m tests.openai_server --model PATH --served-name NAME [--port 0] [--api-key K]

prints `READY <port>` on stdout once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qwenvl_eval.types import (
    GenerateRequest,
    Generation,
    Image,
    ImageRef,
    Part,
    ScoreRequest,
    Text,
)


class BadRequest(Exception):
    pass


def request_from_chat(body: dict[str, Any]) -> GenerateRequest | ScoreRequest:
    """An OpenAI chat-completions body -> the harness's request (what the model sees). With
    vLLM's `continue_final_message`, the final assistant turn is text to score: a
    ScoreRequest with that one option."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: a non-empty list is required")
    continued = None
    if body.get("continue_final_message"):
        if body.get("add_generation_prompt", True) or messages[-1].get("role") != "assistant":
            raise BadRequest("continue_final_message needs a final assistant message")
        continued = messages[-1]["content"]
        messages = messages[:-1]
    system = None
    parts: list[Part] = []
    users = 0
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if role == "system":
            system = content if isinstance(content, str) else "".join(c["text"] for c in content)
        elif role == "user":
            users += 1
            if isinstance(content, str):
                parts.append(Text(content))
                continue
            for c in content:
                if c.get("type") == "text":
                    parts.append(Text(c["text"]))
                elif c.get("type") == "image_url":
                    parts.append(Image(_decode_image(c["image_url"]["url"])))
                else:
                    raise BadRequest(f"unsupported content part {c.get('type')!r}")
        else:
            raise BadRequest(f"unsupported role {role!r}")
    if users != 1:
        raise BadRequest("exactly one user message is supported")
    rid = uuid.uuid4().hex
    if continued is not None:
        return ScoreRequest(id=rid, parts=tuple(parts), options=(continued,), system=system)
    stop = body.get("stop") or ()
    temperature = float(body.get("temperature", 1.0))
    gen = Generation(
        max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 16),
        min_new_tokens=int(body.get("min_tokens") or 0),
        do_sample=temperature > 0,
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
    )
    return GenerateRequest(id=rid, parts=tuple(parts), generation=gen, system=system)


def _decode_image(url: str) -> ImageRef:
    if not url.startswith("data:") or ";base64," not in url:
        raise BadRequest("image_url: only base64 data URLs are accepted")
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"image_url: bad base64 ({exc})") from None
    return ImageRef(key=hashlib.sha256(data).hexdigest()[:16], data=data)


class Server:
    def __init__(self, model_path: str, served_name: str, api_key: str | None) -> None:
        from qwenvl_eval.model.base import RunnerOptions
        from qwenvl_eval.model.hf import HFRunner
        from qwenvl_eval.model.presets import resolve_model

        self.runner = HFRunner(
            resolve_model(model_path),
            RunnerOptions(device="cpu", dtype="fp32", batch_size=1, preprocess_workers=1),
        )
        self.served_name = served_name
        self.api_key = api_key
        self.lock = threading.Lock()  # one generation at a time
        self.completions = 0  # answered chat completions
        self.auth_failures = 0
        self.in_flight = 0  # chat completion requests being handled now
        self.max_in_flight = 0
        self.counter_lock = threading.Lock()

    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("model") != self.served_name:
            return 404, _error(f"model {body.get('model')!r} does not exist", "NotFoundError")
        try:
            request = request_from_chat(body)
        except (BadRequest, KeyError, TypeError, ValueError) as exc:
            return 400, _error(str(exc), "BadRequestError")
        if isinstance(request, ScoreRequest):
            if body.get("prompt_logprobs") is None:
                return 400, _error(
                    "continue_final_message is only served with prompt_logprobs", "BadRequestError"
                )
            with self.lock:
                entries = self.prompt_logprobs(request)
                self.completions += 1
            return 200, self._completion(request.id, "", len(entries), 0, "length") | {
                "prompt_logprobs": entries
            }
        if request.generation.do_sample:
            import torch

            torch.manual_seed(int(body.get("seed") or 0))
        with self.lock:
            response = next(iter(self.runner.generate([request])))
            if response.error is None:
                self.completions += 1
        if response.error is not None:
            return 400, _error(response.error, "BadRequestError")
        text = response.text or ""
        prompt_tokens = int(response.meta.get("prompt_tokens", 0))
        new_tokens = len(self.runner.tokenizer(text, add_special_tokens=False)["input_ids"])
        return 200, self._completion(request.id, text, prompt_tokens, new_tokens, "stop")

    def _completion(
        self, rid: str, text: str, prompt_tokens: int, new_tokens: int, finish: str
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.served_name,
            "system_fingerprint": "qwenvl-eval-test-server",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": new_tokens,
                "total_tokens": prompt_tokens + new_tokens,
            },
        }

    def prompt_logprobs(self, request: ScoreRequest) -> list[dict[str, Any] | None]:
        """vLLM's `prompt_logprobs: 0`: per prompt token (the first has none), the log-prob of
        that token given the ones before it, in one forward pass over prompt + option."""
        import torch

        runner = self.runner
        prepared = runner.prepare(request, 0)
        x = prepared.inputs
        (option,) = x.options
        x.ids, x.types = x.ids + option, x.types + [0] * len(option)
        enc = runner._collate([prepared])
        with torch.inference_mode():
            position_ids, _ = runner.model.model.get_rope_index(
                enc["input_ids"],
                mm_token_type_ids=enc["mm_token_type_ids"],
                image_grid_thw=enc.get("image_grid_thw"),
                attention_mask=enc["attention_mask"],
            )
            logits = runner.model(**enc, position_ids=position_ids).logits[0].float()
        lp = torch.log_softmax(logits, dim=-1)
        out: list[dict[str, Any] | None] = [None]
        for j in range(1, len(x.ids)):
            t = x.ids[j]
            row = lp[j - 1]
            out.append(
                {
                    str(t): {
                        "logprob": row[t].item(),
                        "rank": int((row > row[t]).sum()) + 1,
                        "decoded_token": runner.tokenizer.decode([t]),
                    }
                }
            )
        return out


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": None}}


def make_handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            blob = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

        def _authorised(self) -> bool:
            if server.api_key is None:
                return True
            if self.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            server.auth_failures += 1
            self._send(401, _error("invalid API key", "AuthenticationError"))
            return False

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif self.path == "/stats":
                self._send(
                    200,
                    {
                        "completions": server.completions,
                        "auth_failures": server.auth_failures,
                        "max_in_flight": server.max_in_flight,
                    },
                )
            elif self.path == "/v1/models":
                if self._authorised():
                    model = {
                        "id": server.served_name,
                        "object": "model",
                        "created": 0,
                        "owned_by": "qwenvl-eval-tests",
                        "root": str(server.runner.path),
                    }
                    self._send(200, {"object": "list", "data": [model]})
            else:
                self._send(404, _error(f"no route {self.path}", "NotFoundError"))

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path != "/v1/chat/completions":
                self._send(404, _error(f"no route {self.path}", "NotFoundError"))
                return
            if not self._authorised():
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError as exc:
                self._send(400, _error(f"invalid JSON ({exc})", "BadRequestError"))
                return
            if body.get("stream"):
                self._send(400, _error("streaming is not supported", "BadRequestError"))
                return
            with server.counter_lock:
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._send(*server.complete(body))
            finally:
                with server.counter_lock:
                    server.in_flight -= 1

    return Handler


def main(argv: list[str] | None = None) -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--served-name", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--api-key", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    server = Server(args.model, args.served_name, args.api_key)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(server))
    httpd.daemon_threads = True
    print(f"READY {httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    sys.exit(main())


# ---- helpers for tests: start the server as a process; a proxy that fails on purpose ----------
def start_server(
    model_path: str,
    served_name: str,
    *,
    port: int = 0,
    api_key: str | None = None,
    timeout_s: float = 180.0,
):
    """Start the server in its own process; returns (process, port) once it listens."""
    import os
    import select
    import subprocess
    from pathlib import Path

    cmd = [sys.executable, "-m", "tests.openai_server", "--model", model_path]
    cmd += ["--served-name", served_name, "--port", str(port)]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("READY "):
                return proc, int(line.split()[1])
        if proc.poll() is not None:
            break
    proc.kill()
    _, err = proc.communicate(timeout=30)
    raise RuntimeError(f"test server did not start within {timeout_s}s: {err[-2000:]}")


def stop_server(proc) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def get_json(port: int, path: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return json.loads(r.read())


def _completion_body(content: Any, choices: int = 1) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": content}}
    body = {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": 0,
        "model": "fault",
        "choices": [dict(choice, index=k, finish_reason="stop") for k in range(choices)],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return json.dumps(body).encode()


# Canned misbehaviour: name -> (HTTP status, content type, body). `{auth}` in a body is
# replaced by the request's Authorization header (a server echoing it back).
FAULTS: dict[str, tuple[int, str, bytes]] = {
    "html": (200, "text/html", b"<html><body><h1>502 Bad Gateway</h1> nginx</body></html>"),
    "garbage": (200, "application/json", b'{"choices": [{"message": '),
    "deep": (200, "application/json", b"[" * 100_000 + b"]" * 100_000),
    "not_utf8": (200, "application/json", b'{"choices": "\xff\xfe caf\xe9"}'),
    "content_list": (200, "application/json", _completion_body([{"type": "text", "text": "a"}])),
    "content_number": (200, "application/json", _completion_body(42)),
    "error_200": (
        200,
        "application/json",
        b'{"error": {"message": "CUDA out of memory while decoding", "type": "ServerError"}}',
    ),
    "no_choices": (200, "application/json", _completion_body("x", choices=0)),
    "three_choices": (200, "application/json", _completion_body("yes", choices=3)),
    "special_text": (200, "application/json", _completion_body("yes<|im_end|>\n<|endoftext|>")),
    "echo_auth_400": (
        400,
        "application/json",
        b'{"error": {"message": "bad request; headers were Authorization: {auth}"}}',
    ),
    "echo_auth_200": (200, "application/json", _completion_body("your header: {auth}")),
    "min_tokens_422": (
        422,
        "application/json",
        b'{"detail": "Unexpected fields in the request: {\'min_tokens\'}"}',
    ),
}
HUGE_ANSWER_CHARS = 64 * 1024 * 1024


class FailingProxy:
    """An HTTP proxy on 127.0.0.1 in front of the real server. The first chat completions it
    receives are answered from `plan` instead of being forwarded: an HTTP status (500, 429,
    ...) with an error body; "stall" (hold the connection for `stall_s` seconds, then drop
    it without an answer: a timeout for the client); "trickle" (a 200 whose body comes one
    byte a second, for up to `stall_s` seconds); "huge" (a 64 MiB answer); or a FAULTS name.
    Everything else is forwarded. `trickled` counts the bytes trickled before the client
    hung up."""

    def __init__(self, upstream_port: int, plan: list[int | str], stall_s: float = 8.0) -> None:
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.plan = list(plan)
        self.stall_s = stall_s
        self.injected: list[int | str] = []
        self.forwarded = 0
        self.trickled = 0
        self.hung_up = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FailingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=30)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.close_connection = True
                end = time.monotonic() + proxy.stall_s
                try:
                    while time.monotonic() < end:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        with proxy._lock:
                            proxy.trickled += 1
                        time.sleep(1.0)
                except OSError:  # the client hung up: what a deadline does
                    with proxy._lock:
                        proxy.hung_up += 1

            def _reply(self, status: int, blob: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

            def _forward(self, body: bytes | None) -> None:
                import urllib.error
                import urllib.request

                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=body, headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(req, timeout=120) as r:
                        status, blob = r.status, r.read()
                except urllib.error.HTTPError as exc:
                    status, blob = exc.code, exc.read()
                with proxy._lock:
                    proxy.forwarded += 1
                self._reply(status, blob)

            def do_GET(self) -> None:  # noqa: N802
                self._forward(None)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    action = proxy.plan.pop(0) if proxy.plan else None
                    if action is not None:
                        proxy.injected.append(action)
                if action is None:
                    self._forward(body)
                elif action == "stall":
                    time.sleep(proxy.stall_s)
                    self.close_connection = True
                elif action == "trickle":
                    self._trickle()
                elif action == "huge":
                    self._reply(200, _completion_body("a" * HUGE_ANSWER_CHARS))
                elif action in FAULTS:
                    status, kind, blob = FAULTS[action]
                    auth = (self.headers.get("Authorization") or "").encode()
                    self._reply(status, blob.replace(b"{auth}", auth), kind)
                else:
                    msg = _error(f"injected failure {action}", "InjectedError")
                    self._reply(int(action), json.dumps(msg).encode())

        return Handler
