"""One rule for a predictions line: the store (resume, rescore) and the offline readers
(table and report through `read_predictions`, compare through `read_item_scores`) refuse the
same lines with the same reason, and all of them drop a torn last line."""

import json

import pytest

from qwenvl_eval.errors import UserError
from qwenvl_eval.results.predictions import parse_predictions, read_predictions
from qwenvl_eval.results.runs import read_item_scores
from qwenvl_eval.results.store import PredictionStore

GOOD = {"id": "q1", "prompt_hash": "h", "output": "a", "answer": "a", "score": {"acc": 1.0}}


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (GOOD | {"prompt_hash": 5}, "item q2, field 'prompt_hash': expected a string, got int"),
        (GOOD | {"output": ["a"]}, "item q2, field 'output': expected a string or null"),
        (GOOD | {"extra": "x"}, "item q2, field 'extra': expected an object, got str"),
        (GOOD | {"score": "1.0"}, "item q2, field 'score': expected an object of numbers"),
        ([1, 2], "expected a JSON object, got list"),
    ],
)
def test_every_reader_refuses_the_same_line_with_the_same_reason(tmp_path, bad, why):
    if isinstance(bad, dict):
        bad = bad | {"id": "q2"}
    path = tmp_path / "t.predictions.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(bad) + "\n")
    ((_n, _raw, lenient_why),) = parse_predictions(path.read_bytes(), None).rejected
    assert lenient_why.startswith(why)
    with pytest.raises(UserError, match="line 2: ") as strict:
        PredictionStore(tmp_path).load("t", strict=True)
    assert why in str(strict.value)
    for reader in (lambda: read_predictions(path), lambda: read_item_scores(path, ["acc"])):
        with pytest.raises(UserError) as offline:
            reader()
        assert f"{path}, line 2: not a prediction record ({why}" in str(offline.value)


def test_a_torn_last_line_is_dropped_by_every_reader(tmp_path):
    path = tmp_path / "t.predictions.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"id": "q2", "prompt_ha')
    assert [i.id for i in read_predictions(path)] == ["q1"]
    assert list(read_item_scores(path, ["acc"]).rows) == ["q1"]
    assert list(parse_predictions(path.read_bytes(), None).items) == ["q1"]


def test_the_last_line_of_an_id_wins_offline(tmp_path):
    path = tmp_path / "t.predictions.jsonl"
    later = GOOD | {"output": "b", "score": {"acc": 0.0}}
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(later) + "\n")
    assert [(i.id, i.output) for i in read_predictions(path)] == [("q1", "b")]
    scores = read_item_scores(path, ["acc"])
    assert scores.values["acc"][scores.rows["q1"]] == 0.0


def test_the_request_fingerprint_keeps_its_key_on_disk(tmp_path):
    # ItemResult.request_hash was named prompt_hash: lines written before still resume.
    path = tmp_path / "t.predictions.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    (item,) = read_predictions(path)
    assert item.request_hash == "h" and item.to_json() == GOOD
