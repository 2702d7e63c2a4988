"""caption_scores against pycocoevalcap's own COCOEvalCap and the coco-caption demo numbers."""

from __future__ import annotations

import pytest

from qwenvl_eval.metrics import caption_scores
from tests.metrics._data import load_coco_fakecap, needs_java

pytest.importorskip("pycocoevalcap")
pytestmark = needs_java

ALL_KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")

# coco-caption's demo on its fake results (cocoEvalCapDemo; 3 decimals as published).
PUBLISHED_DEMO = {
    "Bleu_1": 0.579,
    "Bleu_2": 0.404,
    "Bleu_3": 0.279,
    "Bleu_4": 0.191,
    "METEOR": 0.195,
    "ROUGE_L": 0.396,
    "CIDEr": 0.600,
}
# The same pair through pycocoevalcap 1.2's COCOEvalCap (SPICE off), full precision.
COCOEVALCAP_FULL = {
    "Bleu_1": 0.5793995754573356,
    "Bleu_2": 0.40439129741018104,
    "Bleu_3": 0.2785363856619147,
    "Bleu_4": 0.1908290437674253,
    "METEOR": 0.19525467177780284,
    "ROUGE_L": 0.39625269357570847,
    "CIDEr": 0.5997905185184199,
}


class _CocoLike:
    """The two members of pycocotools' COCO that COCOEvalCap reads."""

    def __init__(self, captions: dict[object, list[str]]) -> None:
        self.imgToAnns = {k: [{"caption": c} for c in v] for k, v in captions.items()}

    def getImgIds(self) -> list[object]:  # noqa: N802 - pycocotools' name
        return list(self.imgToAnns)


def cocoevalcap_reference(
    refs: dict[object, list[str]], preds: dict[object, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, float], dict[object, float]]:
    """Run pycocoevalcap's COCOEvalCap itself (separate PTB calls, its scorers), no SPICE."""
    import pycocoevalcap.eval as coco_eval

    class _NoSpice:
        def compute_score(self, gts, res):  # noqa: ANN001
            return 0.0, [0.0] * len(gts)

        def method(self) -> str:
            return "SPICE"

    monkeypatch.setattr(coco_eval, "Spice", _NoSpice)
    results = _CocoLike({k: [v] for k, v in preds.items()})
    evaluator = coco_eval.COCOEvalCap(_CocoLike(refs), results)
    evaluator.evaluate()
    per_item = {k: v["CIDEr"] for k, v in evaluator.imgToEval.items()}
    return {k: float(evaluator.eval[k]) for k in ALL_KEYS}, per_item


@pytest.fixture(scope="module")
def coco_full() -> tuple[dict[int, list[str]], dict[int, str], dict]:
    refs, preds = load_coco_fakecap()
    return refs, preds, caption_scores(refs, preds)


def test_excerpt_equals_cocoevalcap(monkeypatch: pytest.MonkeyPatch) -> None:
    refs, preds = load_coco_fakecap()
    ids = list(refs)[:150]
    refs = {i: refs[i] for i in ids}
    preds = {i: preds[i] for i in ids}
    expected, expected_cider = cocoevalcap_reference(refs, preds, monkeypatch)
    ours = caption_scores(refs, preds)
    for key in ALL_KEYS:
        assert ours[key] == pytest.approx(expected[key], abs=1e-9), key
    assert ours["CIDEr_per_item"].keys() == expected_cider.keys()
    for key, value in expected_cider.items():
        assert ours["CIDEr_per_item"][key] == pytest.approx(value, abs=1e-9)
    assert (ours["count"], ours["missing_predictions"], ours["skipped_references"]) == (150, 0, 0)


def test_full_demo_matches_published_numbers(coco_full) -> None:
    _, _, ours = coco_full
    for key in ALL_KEYS:
        assert round(ours[key], 3) == PUBLISHED_DEMO[key], key
        assert ours[key] == pytest.approx(COCOEVALCAP_FULL[key], abs=1e-9), key
    assert ours["count"] == 1000


def test_full_demo_per_item_cider_averages_to_corpus(coco_full) -> None:
    _, _, ours = coco_full
    per_item = ours["CIDEr_per_item"]
    assert len(per_item) == 1000
    assert sum(per_item.values()) / 1000 == pytest.approx(ours["CIDEr"], abs=1e-12)


def test_metric_subset_equals_full_run(coco_full) -> None:
    refs, preds, full = coco_full
    ids = list(refs)
    sub = caption_scores(refs, preds, metrics=("Bleu_4", "CIDEr"))
    assert set(sub) == {
        "Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "CIDEr_per_item",
        "count", "missing_predictions", "skipped_references",
    }  # fmt: skip
    for key in ("Bleu_1", "Bleu_4", "CIDEr"):
        assert sub[key] == full[key]
    assert sub["CIDEr_per_item"][ids[7]] == full["CIDEr_per_item"][ids[7]]
    only_rouge = caption_scores(refs, preds, metrics="ROUGE_L")
    assert only_rouge["ROUGE_L"] == full["ROUGE_L"]
    assert "CIDEr" not in only_rouge and "METEOR" not in only_rouge


def test_missing_none_and_odd_predictions_equal_cocoevalcap_on_cleaned_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refs, preds = load_coco_fakecap()
    ids = list(refs)[:12]
    refs = {i: refs[i] for i in ids}
    refs["str-id"] = ["A dog runs on the grass.", "A brown dog running."]  # mixed id types
    ours_preds: dict[object, object] = {i: preds[i] for i in ids}
    ours_preds["str-id"] = "a dog running on grass"
    ours_preds[ids[0]] = None  # None
    del ours_preds[ids[1]]  # missing
    ours_preds[ids[2]] = ""  # empty
    ours_preds[ids[3]] = 42  # not a string
    ours_preds[ids[4]] = "a man\rriding\u2028a horse\nin a field"  # line breaks
    ours_preds[ids[5]] = "A |||  dog"  # METEOR's separator
    ours_preds[-1] = "prediction for an id without references: ignored"
    # What COCOEvalCap gives once the bad predictions are the empty caption and the
    # line breaks it does not handle are spaces.
    cleaned = {k: v for k, v in ours_preds.items() if k in refs}
    cleaned.update({ids[0]: "", ids[1]: "", ids[3]: ""})
    cleaned[ids[4]] = "a man riding a horse in a field"
    expected, expected_cider = cocoevalcap_reference(refs, cleaned, monkeypatch)
    ours = caption_scores(refs, ours_preds)
    for key in ALL_KEYS:
        assert ours[key] == pytest.approx(expected[key], abs=1e-9), key
    assert ours["CIDEr_per_item"] == pytest.approx(expected_cider, abs=1e-9)
    assert ours["missing_predictions"] == 3  # None, absent, 42 ("" is a prediction)
    assert ours["count"] == 13


def test_references_without_captions_are_skipped() -> None:
    refs = {
        "a": ["A dog runs on the grass.", "A brown dog running."],
        "b": [],
        "c": None,
        "d": "A single reference string.",
        7: ["A cat.", None, 3],
    }
    preds = {"a": "a dog running on grass", "d": "a single string", 7: "a cat"}
    out = caption_scores(refs, preds, metrics=("Bleu", "ROUGE_L", "CIDEr"))
    assert (out["count"], out["skipped_references"], out["missing_predictions"]) == (3, 2, 0)
    assert set(out["CIDEr_per_item"]) == {"a", "d", 7}
    assert all(0.0 <= out[k] <= 1.0 for k in ("Bleu_1", "Bleu_4", "ROUGE_L"))


@pytest.mark.parametrize("references", [{}, None, "not a mapping", {"a": []}])
def test_nothing_to_score_gives_zeros_without_java(references) -> None:
    out = caption_scores(references, {"a": "x"})
    assert {k: out[k] for k in ALL_KEYS} == dict.fromkeys(ALL_KEYS, 0.0)
    assert out["CIDEr_per_item"] == {}
    assert out["count"] == 0


def test_all_empty_references_do_not_crash_cider() -> None:
    out = caption_scores({1: ["..."], 2: ["!"]}, {1: "a dog", 2: ""}, metrics=("CIDEr", "Bleu"))
    assert out["CIDEr"] == 0.0
    assert out["CIDEr_per_item"] == {1: 0.0, 2: 0.0}


@pytest.mark.parametrize("name", ["SPICE", "BLEU", "cider", "Bleu_5"])
def test_unknown_or_unsupported_metric_is_a_programming_error(name: str) -> None:
    message = "SPICE is not supported" if name == "SPICE" else "unknown"
    with pytest.raises(ValueError, match=message):
        caption_scores({1: ["a"]}, {1: "a"}, metrics=(name,))


def test_ptb_tokenize_equals_pycocoevalcap_tokenizer() -> None:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from qwenvl_eval.metrics import ptb_tokenize

    sentences = [
        "A man riding a horse.",
        "",
        "   ",
        '"Quote me," he said -- twice...',
        "Don't stop: it's 3.5 o'clock (roughly)!",
        "café naïve 中文 😀",
        "<b>bold</b> & more",
        "a\nnewline",
        "Two  spaces\tand a tab",
    ]
    theirs = PTBTokenizer().tokenize({i: [{"caption": s}] for i, s in enumerate(sentences)})
    assert ptb_tokenize(sentences) == [theirs[i][0] for i in range(len(sentences))]
    assert ptb_tokenize(["a\rb", "c\u2028d", None]) == ["a b", "c d", ""]
