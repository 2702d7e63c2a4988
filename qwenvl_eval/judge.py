"""The optional LLM judge: a scoring-time step, not a model backend.

Some reference scorers (MathVista's official extraction, VLMEvalKit's multiple-choice
matching) read an answer by rules and ask an LLM only where the rules read nothing. Here the
rules are the default; with `--judge-base-url/--judge-model` the items the rules could not
read are sent, after generation, to an OpenAI-compatible judge (the backend's own client
pieces: deadline, retries, key redaction), and the task scores them again from the judge's
reply. Without a judge nothing is sent anywhere; the task's result then carries a note saying
the reference would have asked one.

A task declares its judge prompt (`JudgePrompt`, with the prompt's source) and two methods:
`judge_queries(items, docs)` (item id -> the full prompt text, for the items its rules could
not read; a `JudgeQuery` where the reference picks one of several prompts per item, as
VLMEvalKit's Chinese prompt for a Chinese question) and `judged(doc, item, reply)` (the item
scored from the judge's reply, or None when the reply cannot be read either). Every judged
item -- request, reply or error, the answer read, the prompt used -- is one line of
`<task>.judge.jsonl` in the run directory; a successful reply is reused by resume and rescore
(same judge model, same prompt and text): no second call.
A call that fails (HTTP 5xx or a timeout after the retries, a bad answer) leaves its item as
the rules scored it and is retried by the next run; the task's notes count it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import UserError
from .types import RULES_ONLY_NOTE, Document, ItemResult, JudgePrompt, JudgeQuery, stable_hash

if TYPE_CHECKING:
    from .results.store import PredictionStore
    from .tasks.base import Scored, Task

log = logging.getLogger(__name__)

# The flags, declared once for `run` and `rescore`.
JUDGE_FLAG_HELP = {
    "judge_base_url": "Optional LLM judge: an OpenAI-compatible server (http(s)://host[:port]/v1) "
    "asked, after generation, about the answers the rules of MathVista / MMBench / MMStar / "
    "RealWorldQA cannot read (as the reference scorers do). Without it nothing is sent.",
    "judge_model": "The model name the judge server serves (required with --judge-base-url).",
    "judge_api_key_env": "Environment variable holding the judge's API key (it must be set); "
    "default: no key (a local server).",
}


# The judge's transport settings: the OpenAI backend's defaults (backends.py).
_TIMEOUT_S = 600.0
_RETRIES = 5
_CONCURRENCY = 8


@dataclass(frozen=True)
class JudgeOptions:
    """`--judge-*`: which judge, and the key's variable (its name, never its value)."""

    base_url: str
    model: str
    api_key_env: str | None = None
    request_timeout: float = _TIMEOUT_S
    max_retries: int = _RETRIES
    concurrency: int = _CONCURRENCY

    @classmethod
    def from_flags(
        cls, base_url: str | None, model: str | None, api_key_env: str | None
    ) -> JudgeOptions | None:
        """None when no --judge-* flag is given; a one-line error for an incomplete set."""
        if base_url is None and model is None and api_key_env is None:
            return None
        if not base_url:
            raise UserError("--judge-model/--judge-api-key-env need --judge-base-url")
        if not model:
            raise UserError("--judge-base-url needs --judge-model (the model the judge serves)")
        options = cls(base_url, model, api_key_env)
        options.check()
        return options

    def check(self) -> None:
        """Before any data is read or a model loads."""
        from .model.openai_api import check_base_url

        try:
            check_base_url(self.base_url)
        except UserError as exc:
            raise UserError(str(exc).replace("--base-url", "--judge-base-url", 1)) from None
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise UserError(
                f"--judge-api-key-env {self.api_key_env}: the variable is not set (or empty); "
                "export the judge's API key in it"
            )

    def public_url(self) -> str:
        """The base URL without user info or query (where a key could hide)."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.public_url(),
            "model": self.model,
            "api_key_env": self.api_key_env,
            "request_timeout": self.request_timeout,
            "max_retries": self.max_retries,
        }


class JudgeUnavailable(UserError):
    """The judge refuses every request (key, permission, unknown model): no item can be
    judged, so the run stops with one line; its answers are saved and a rerun resumes."""


class Judge:
    """The judge's client, opened at its first question (a run whose rules read everything
    opens nothing)."""

    def __init__(self, options: JudgeOptions) -> None:
        self.options = options
        self._client: Any = None
        self._redact: Any = None

    def _open(self) -> None:
        import openai

        from .model.openai_api import Redactor, deadline_client

        o = self.options
        key = os.environ.get(o.api_key_env) if o.api_key_env else None
        self._redact = Redactor(key)
        self._client = openai.OpenAI(
            base_url=o.base_url,
            api_key=key or "EMPTY",
            timeout=o.request_timeout,
            max_retries=o.max_retries,
            http_client=deadline_client(o.request_timeout),
        )

    def ask(self, prompt: str, max_tokens: int) -> tuple[str | None, str | None]:
        """(reply, None) or (None, one-line error) for one prompt, greedy."""
        import openai

        from .model.openai_api import BadAnswer, brief_error, completion_text, parse_body

        if self._client is None:
            self._open()
        o = self.options
        try:
            raw = self._client.chat.completions.with_raw_response.create(
                model=o.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=0.0,
                max_tokens=max_tokens,
                n=1,
            )
            content, _finish, _n = completion_text(parse_body(raw.http_response.content))
        except (
            openai.AuthenticationError,
            openai.PermissionDeniedError,
            openai.NotFoundError,
        ) as exc:
            brief = brief_error(exc, o.request_timeout, self._redact)
            raise JudgeUnavailable(f"--judge-base-url {o.public_url()}: {brief}") from None
        except openai.APIError as exc:
            return None, brief_error(exc, o.request_timeout, self._redact)
        except BadAnswer as exc:
            return None, self._redact(str(exc))
        return self._redact(content), None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@dataclass
class JudgeRecord:
    """One line of `<task>.judge.jsonl`: one judged item."""

    id: str
    key: str  # judge model + prompt: a reply is reused only for the very same question
    judge_model: str
    base_url: str
    prompt: str  # the JudgePrompt's name
    prompt_hash: str
    request: str
    response: str | None
    error: str | None
    answer: Any = None  # what the task read from the reply (None: unreadable or failed)


def judge_key(model: str, prompt: JudgePrompt, text: str) -> str:
    return stable_hash([model, prompt.hash(), text])


def judge_items(
    task: Task,
    items: list[ItemResult],
    docs: Mapping[str, Document],
    judge: Judge | None,
    store: PredictionStore,
) -> tuple[list[ItemResult], list[str]]:
    """The items with those the rules could not read scored from the judge's reply, and the
    notes saying what was judged (or that the reference would have asked a judge)."""
    default = task.judge_prompt
    if default is None:
        return items, []
    items = [rules_only(it) for it in items]  # a resumed item as its rules scored it
    asked = {
        i: q if isinstance(q, JudgeQuery) else JudgeQuery(default, q)
        for i, q in task.judge_queries(items, docs).items()
    }
    used = _prompts_used(asked.values())
    if judge is None:
        # With every answer read by the rules, the reference's judge would not have been asked:
        # the score is the reference's, and nothing needs a footnote.
        return items, [no_judge_note(used, len(asked))] if asked else []
    o = judge.options
    cached = store.load_judged(task.name)
    # Keyed on the prompt each item is actually asked with: a reply to one prompt is never
    # reused for another.
    keys = {i: judge_key(o.model, q.prompt, q.text) for i, q in asked.items()}
    reused = {i: cached[k] for i, k in keys.items() if k in cached}
    todo = [i for i in asked if i not in reused]
    by_id = {it.id: it for it in items}
    # Each reply read once: the record keeps the answer read, the item takes the score.
    read_from: dict[str, tuple[str, Scored | None]] = {
        i: (row["response"], task.judged(docs[i], by_id[i], row["response"]))
        for i, row in reused.items()
    }
    failed = 0
    # In order; each written the moment it is read (a killed run keeps what it paid for).
    for i, (reply, error) in _ask_all(judge, todo, asked):
        scored = None
        if error is not None:
            failed += 1
            log.warning("%s, item %s: the judge failed: %s", task.name, i, error)
        elif reply is not None:
            scored = task.judged(docs[i], by_id[i], reply)
            read_from[i] = (reply, scored)
        prompt = asked[i].prompt
        rec = JudgeRecord(
            i, keys[i], o.model, o.public_url(), prompt.name, prompt.hash(), asked[i].text,
            reply, error, None if scored is None else scored.answer,
        )  # fmt: skip
        store.append_judged(task.name, asdict(rec))
    out = [_with_reply(it, *read_from[it.id]) if it.id in read_from else it for it in items]
    read = sum(1 for it in out if "judge" in it.extra)
    file = store.judge_file(task.name).name
    return out, [judged_note(o, used, len(asked), len(reused), read, failed, file)]


def _prompts_used(queries: Iterable[JudgeQuery]) -> list[tuple[JudgePrompt, int]]:
    """Each prompt the items are asked with and how many, in order of first use."""
    counts: dict[JudgePrompt, int] = {}
    for q in queries:
        counts[q.prompt] = counts.get(q.prompt, 0) + 1
    return list(counts.items())


def _with_reply(item: ItemResult, reply: str, scored: Scored | None) -> ItemResult:
    """The item scored from the judge's reply (its rules' result kept beside), or as it was
    when the reply names no answer."""
    if scored is None:
        return item
    rules = {"answer": item.answer, "score": item.score, "extra": item.extra}
    judged = {"reply": reply, "answer": scored.answer, "rules": rules}
    extra = {**item.extra, **scored.extra, "judge": judged}
    return replace(item, answer=scored.answer, score=scored.scores, extra=extra)


def _ask_all(
    judge: Judge, todo: list[str], queries: Mapping[str, JudgeQuery]
) -> Iterator[tuple[str, tuple[str | None, str | None]]]:
    """Each item's (reply, error), in order. The first question goes alone, so a judge that
    refuses every request (a bad key) costs one call; then `concurrency` are in flight, and
    nothing more is sent once one raises."""
    if not todo:
        return
    first = queries[todo[0]]
    yield todo[0], judge.ask(first.text, first.prompt.max_tokens)
    pool = ThreadPoolExecutor(judge.options.concurrency, thread_name_prefix="qwenvl-judge")
    try:
        futures = [
            (i, pool.submit(judge.ask, queries[i].text, queries[i].prompt.max_tokens))
            for i in todo[1:]
        ]
        for i, future in futures:
            yield i, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def rules_only(item: ItemResult) -> ItemResult:
    """An item saved with a judged score, as its rules scored it (what it keeps under
    `extra.judge.rules`): a run without the judge, or with another one, starts from there."""
    judged = item.extra.get("judge")
    rules = judged.get("rules") if isinstance(judged, dict) else None
    if not isinstance(rules, dict):
        return item
    return replace(item, answer=rules.get("answer"), score=rules.get("score") or {},
                   extra=rules.get("extra") or {})  # fmt: skip


def no_judge_note(used: list[tuple[JudgePrompt, int]], unread: int) -> str:
    """What a table footnotes on a cell scored by rules where the reference asks a judge."""
    sources = "; ".join(dict.fromkeys(p.source for p, _ in used))
    return (
        f"{RULES_ONLY_NOTE}: the reference ({sources}) asks an LLM judge where its "
        f"rules cannot read the answer; {unread} such item(s) count wrong here "
        "(no --judge-base-url)"
    )


def judged_note(
    o: JudgeOptions,
    used: list[tuple[JudgePrompt, int]],
    asked: int,
    reused: int,
    read: int,
    failed: int,
    file: str,
) -> str:
    """How many items the judge was asked about (with which prompt, each prompt's items
    counted when there are several), answered from the run's file, read, failed."""
    prompts = "; ".join(
        f"prompt {p.name}, hash {p.hash()}, from {p.source}"
        + (f": {n} item(s)" if len(used) > 1 else "")
        for p, n in used
    )
    return (
        f"LLM judge {o.model} at {o.public_url()} ({prompts}): "
        f"{asked} item(s) the rules could not read were judged "
        f"({reused} reused from {file}), {read} read from its reply, "
        f"{failed} call(s) failed (those items count as the rules scored them: wrong)"
    )
