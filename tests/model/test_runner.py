"""The shared batching runner, driven by a fake backend (no model): batch planning, grouping,
order/ids, OOM back-off, error isolation, stats, determinism."""

from __future__ import annotations

import threading

import pytest
import torch

from qwenvl_eval.model.base import RunnerOptions
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.model.runner import (
    BatchedRunner,
    GenOutput,
    Prepared,
    is_oom,
    padded_tokens,
    plan_batches,
)
from qwenvl_eval.types import GenerateRequest, Generation, OptionScore, ScoreRequest, Text


class FakeRunner(BatchedRunner):
    """Prompt length = number of words; the 'answer' is the prompt upper-cased and cut to
    max_new_tokens words, so every output is a checkable function of its own request."""

    def __init__(self, options: RunnerOptions, oom_above: int | None = None, fail_ids=()):
        super().__init__(QWEN2_VL, options)
        self.oom_above = oom_above
        self.fail_ids = set(fail_ids)
        self.batches: list[list[str]] = []
        self.prepare_threads: set[str] = set()

    def prepare(self, request, index):
        self.prepare_threads.add(threading.current_thread().name)
        text = request.parts[0].text
        if text == "UNREADABLE":
            raise OSError("cannot identify image file 'broken.png'")
        return Prepared(request, index, num_tokens=len(text.split()), meta={"i": index})

    def _check(self, batch):
        if self.oom_above is not None and len(batch) > self.oom_above:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        for p in batch:
            if p.request.id in self.fail_ids:
                raise ValueError(f"bad item {p.request.id}")
        self.batches.append([p.request.id for p in batch])

    def generate_batch(self, batch, generation):
        self._check(batch)
        n = generation.max_new_tokens
        return [GenOutput(" ".join(p.request.parts[0].text.upper().split()[:n]), 1) for p in batch]

    def score_batch(self, batch):
        self._check(batch)
        return [
            tuple(OptionScore(-float(len(o)), -1.0, len(o)) for o in p.request.options)
            for p in batch
        ]

    def provenance(self):
        return {"backend": "fake"}


def _gen(i: int, words: int, max_new: int = 3) -> GenerateRequest:
    text = " ".join(f"w{i}_{k}" for k in range(words))
    return GenerateRequest(f"g{i}", (Text(text),), Generation(max_new_tokens=max_new))


def _expected(req: GenerateRequest) -> str:
    return " ".join(req.parts[0].text.upper().split()[: req.generation.max_new_tokens])


def _p(i: int, n: int, key: str = "a") -> Prepared:
    return Prepared(GenerateRequest(f"r{i}", (Text(key),), Generation()), i, n)


def test_plan_respects_rows_and_token_budget():
    items = [_p(i, n) for i, n in enumerate([5, 30, 7, 12, 30, 3, 9, 100])]
    batches = plan_batches(items, batch_size=3, max_batch_tokens=40, key=lambda p: 0)
    assert sorted(p.index for b in batches for p in b) == list(range(8))  # nothing lost
    for b in batches:
        assert len(b) <= 3
        assert len(b) == 1 or padded_tokens(b) <= 40
    # Longest first, and the 100-token item (over budget) runs alone instead of being dropped.
    assert [p.num_tokens for p in batches[0]] == [100]
    lengths = [p.num_tokens for b in batches for p in b]
    assert lengths == sorted(lengths, reverse=True)


def test_plan_never_mixes_groups():
    items = [_p(i, 10 + i, key="x" if i % 3 else "y") for i in range(9)]
    batches = plan_batches(items, 4, None, key=lambda p: p.request.parts[0].text)
    for b in batches:
        assert len({p.request.parts[0].text for p in b}) == 1


def test_generate_groups_by_settings_and_answers_every_item():
    reqs = [_gen(i, words=1 + (i * 7) % 11, max_new=1 + i % 3) for i in range(20)]
    r = FakeRunner(RunnerOptions(batch_size=4, max_batch_tokens=30))
    out = list(r.generate(reqs))
    assert sorted(x.id for x in out) == sorted(q.id for q in reqs)  # each once
    by_id = {q.id: q for q in reqs}
    for resp in out:
        assert resp.error is None
        assert resp.text == _expected(by_id[resp.id])  # output belongs to its own request
        assert resp.meta == {"i": reqs.index(by_id[resp.id])}
    for b in r.batches:
        assert len({by_id[i].generation for i in b}) == 1
        assert len(b) <= 4
    assert r.stats.items == 20 and r.stats.batches == len(r.batches)
    assert r.stats.prompt_tokens == sum(len(q.parts[0].text.split()) for q in reqs)
    assert r.stats.new_tokens == 20 and r.stats.errors == 0


def test_batching_is_deterministic():
    reqs = [_gen(i, words=1 + (i * 5) % 13, max_new=1 + i % 2) for i in range(30)]
    runs = []
    for _ in range(2):
        r = FakeRunner(RunnerOptions(batch_size=5, max_batch_tokens=40, preprocess_workers=3))
        ids = [x.id for x in r.generate(reqs)]
        runs.append((ids, r.batches))
    assert runs[0] == runs[1]


def test_oom_halves_and_keeps_every_item():
    reqs = [_gen(i, words=4) for i in range(8)]
    r = FakeRunner(RunnerOptions(batch_size=8), oom_above=2)
    out = list(r.generate(reqs))
    assert sorted(x.id for x in out) == sorted(q.id for q in reqs)
    assert all(x.error is None for x in out)
    assert all(len(b) <= 2 for b in r.batches)
    assert r.stats.oom_retries >= 2  # 8 -> 4 -> 2
    assert r.stats.errors == 0


def test_generic_out_of_memory_runtime_error_is_recognised():
    assert is_oom(RuntimeError("CUDA error: out of memory"))
    assert is_oom(torch.cuda.OutOfMemoryError("x"))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_oom_at_batch_size_one_is_an_item_error():
    reqs = [_gen(i, words=3) for i in range(3)]
    r = FakeRunner(RunnerOptions(batch_size=4), oom_above=0)
    out = list(r.generate(reqs))
    assert len(out) == 3
    assert all(x.error and "out of memory" in x.error for x in out)
    assert r.stats.errors == 3


def test_failing_item_is_isolated():
    reqs = [_gen(i, words=5) for i in range(7)]
    r = FakeRunner(RunnerOptions(batch_size=7), fail_ids={"g3"})
    out = {x.id: x for x in r.generate(reqs)}
    assert set(out) == {q.id for q in reqs}
    assert out["g3"].error is not None and "bad item g3" in out["g3"].error
    for q in reqs:
        if q.id != "g3":
            assert out[q.id].error is None and out[q.id].text == _expected(q)
    assert r.stats.errors == 1 and r.stats.oom_retries == 0


def test_unreadable_input_is_an_error_response_and_the_rest_succeed():
    reqs = [_gen(i, words=2) for i in range(4)]
    reqs.insert(2, GenerateRequest("bad", (Text("UNREADABLE"),), Generation()))
    r = FakeRunner(RunnerOptions(batch_size=2, preprocess_workers=2))
    out = {x.id: x for x in r.generate(reqs)}
    assert "cannot identify image file" in out["bad"].error
    assert all(out[q.id].text == _expected(q) for q in reqs if q.id != "bad")
    # Preparation ran on the pool's worker threads, not the caller's.
    assert r.prepare_threads and all(t.startswith("qwenvl-prep") for t in r.prepare_threads)


def test_windows_cover_long_inputs():
    # More requests than one preparation window (batch_size * window_batches).
    window = 2 * FakeRunner.window_batches
    reqs = [_gen(i, words=1 + i % 9) for i in range(2 * window + 3)]
    r = FakeRunner(RunnerOptions(batch_size=2))
    out = list(r.generate(reqs))
    assert sorted(x.id for x in out) == sorted(q.id for q in reqs)
    # Sorting happens within a window: the first window's items run before the second's.
    first = {f"g{i}" for i in range(window)}
    assert {x.id for x in out[:window]} == first


def test_score_options_shapes_and_type_checks():
    reqs = [ScoreRequest(f"s{i}", (Text("a " * (i + 1)),), (" A", " BB", " CCC")) for i in range(5)]
    r = FakeRunner(RunnerOptions(batch_size=2))
    out = {x.id: x for x in r.score_options(reqs)}
    assert all(len(x.options) == 3 and x.options[1].num_tokens == 3 for x in out.values())
    with pytest.raises(TypeError):
        list(r.generate(reqs))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        list(r.score_options([ScoreRequest("e", (Text("x"),), ())]))


def test_empty_request_list():
    r = FakeRunner(RunnerOptions())
    assert list(r.generate([])) == []
    assert r.stats.items == 0
