"""NoCaps and Flickr30K: the official formats, the paper's prompt byte for byte, corpus-level
CIDEr equal to pycocoevalcap's own pipeline, and the Flickr30K few-shot variants."""

from __future__ import annotations

import re

import pytest

from qwenvl_eval import registry
from qwenvl_eval.errors import DataError
from qwenvl_eval.evaluator import prepare_task
from qwenvl_eval.model.families import QWEN2_VL, QWEN_VL
from qwenvl_eval.tasks.captioning import CaptionTask, NoCaps
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.tasks.prompts import render_raw
from qwenvl_eval.types import Image, ItemResult, Text
from tests.tasks import _docs_fixtures as fx

# PROTOCOL.md section 2 (Qwen-VL eval_mm/evaluate_caption.py).
PAPER_CAPTION_PROMPT = "<img>{image}</img>Describe the image in English:"


def coco_cider(refs: dict[str, list[str]], preds: dict[str, str]) -> tuple[float, dict]:
    """CIDEr x100 the way COCOEvalCap computes it: pycocoevalcap's PTBTokenizer (one call for
    references, one for predictions) and its Cider scorer."""
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({k: [{"caption": c} for c in v] for k, v in refs.items()})
    res = tok.tokenize({k: [{"caption": preds[k]}] for k in refs})
    score, per_item = Cider().compute_score(gts, res)
    return 100 * score, {k: 100 * v for k, v in zip(gts, per_item, strict=True)}


# -- NoCaps -----------------------------------------------------------------------------------
def test_nocaps_loads_the_official_file(tmp_path):
    root = fx.write_nocaps(tmp_path)
    docs = registry.get_task("nocaps").load(root).docs
    assert [d.id for d in docs] == ["0", "1", "2", "3", "4", "5"]
    assert [d.fields["domain"] for d in docs[:3]] == ["in-domain", "near-domain", "out-domain"]
    assert docs[2].fields["references"] == fx.NOCAPS[2][2]
    assert docs[0].images[0].key == "images/0000000000000000.jpg"
    assert docs[0].images[0].path == (root / "nocaps/images/0000000000000000.jpg").resolve()


@pytest.mark.parametrize("name", ["nocaps", "flickr30k"])
def test_caption_paper_prompt_and_generation(name, tmp_path):
    fx.write_nocaps(tmp_path)
    fx.write_flickr_karpathy(tmp_path)
    run = prepare_task(name, tmp_path, QWEN_VL.info)
    image = {
        "nocaps": "images/0000000000000000.jpg",
        "flickr30k": "flickr30k-images/1000268201.jpg",
    }[name]
    assert render_raw(run.requests[0].parts) == PAPER_CAPTION_PROMPT.format(image=image)
    assert run.requests[0].style == "raw"
    gen = run.requests[0].generation
    assert (gen.max_new_tokens, gen.min_new_tokens, gen.length_penalty) == (30, 8, 0.0)
    assert not gen.do_sample and gen.num_beams == 1


def test_caption_chat_prompt_puts_the_image_first(tmp_path):
    run = prepare_task("nocaps", fx.write_nocaps(tmp_path), QWEN2_VL.info)
    image, text = run.requests[0].parts
    assert isinstance(image, Image) and image.image.key == "images/0000000000000000.jpg"
    assert text == Text("Describe the image in English in one sentence.")
    assert run.requests[0].style == "chat"


def test_nocaps_scores_equal_pycocoevalcap_overall_and_per_domain(tmp_path):
    root = fx.write_nocaps(tmp_path)
    texts = {
        "0": "A man riding a horse on the beach.",
        "1": "A bus on the street.",
        "2": "A fish in the water.",
        "4": "A yellow taxi in the city.",
        "5": "A tortoise on the sand.",
    }
    runner = fx.TableRunner(texts, fail={"3"})  # a failed item counts as the empty caption
    run, result, _ = fx.run_task("nocaps", root, tmp_path, runner)

    refs = {str(i): r for i, _, r in fx.NOCAPS}
    preds = {**texts, "3": ""}
    overall, _ = coco_cider(refs, preds)
    assert result.metrics["CIDEr"] == pytest.approx(overall, rel=1e-9)
    for domain in ("in-domain", "near-domain", "out-domain"):
        ids = [str(i) for i, d, _ in fx.NOCAPS if d == domain]
        expected, _ = coco_cider({i: refs[i] for i in ids}, preds)
        assert result.metrics[f"CIDEr_{domain}"] == pytest.approx(expected, rel=1e-9)
    assert overall > 0 and result.metrics["CIDEr"] != result.metrics["CIDEr_in-domain"]
    assert result.counts == {"items": 6, "errors": 1, "resumed": 0}
    assert run.task.metrics[0] == "CIDEr"


def test_caption_aggregate_gives_each_item_its_cider(tmp_path):
    root = fx.write_nocaps(tmp_path)
    task = registry.get_task("nocaps")
    docs = {d.id: d for d in task.load(root).docs}
    preds = {i: docs[i].fields["references"][0] for i in docs}
    items = [
        ItemResult(id=i, request_hash="h", output=p, answer=p, score={}) for i, p in preds.items()
    ]
    summary = task.aggregate(items, docs)
    _, per_item = coco_cider({i: d.fields["references"] for i, d in docs.items()}, preds)
    shares = {i: s["CIDEr"] for i, s in summary.item_scores.items()}
    assert shares == pytest.approx(per_item, rel=1e-9)
    assert all(it.score == {} for it in items)  # returned, not written onto the items


def test_caption_metrics_are_configurable(tmp_path):
    class NoCapsMore(NoCaps):
        metrics = ("CIDEr", "Bleu_4", "ROUGE_L")

    root = fx.write_nocaps(tmp_path)
    docs = {d.id: d for d in NoCapsMore().load(root).docs}
    items = [
        ItemResult(id=i, request_hash="h", output="a man", answer="a man", score={}) for i in docs
    ]
    out = NoCapsMore().aggregate(items, docs).metrics
    assert set(out) == {
        "CIDEr",
        "Bleu_4",
        "ROUGE_L",
        "CIDEr_in-domain",
        "CIDEr_near-domain",
        "CIDEr_out-domain",
    }
    assert 0 < out["ROUGE_L"] < 100
    assert CaptionTask.metrics == ("CIDEr",)  # the paper's metric only, by default


def test_caption_notes_say_a_limited_cider_is_not_comparable(tmp_path):
    root = fx.write_nocaps(tmp_path)
    texts = {str(i): "a photo" for i, _, _ in fx.NOCAPS}
    _, limited, _ = fx.run_task("nocaps", root, tmp_path / "a", fx.TableRunner(texts), limit=2)
    _, full, _ = fx.run_task("nocaps", root, tmp_path / "b", fx.TableRunner(texts))
    assert any("NOT comparable" in n for n in limited.notes)
    assert not any("NOT comparable" in n for n in full.notes)
    assert set(limited.metrics) == {"CIDEr", "CIDEr_in-domain", "CIDEr_near-domain"}


def test_nocaps_lmms_lab_parquet(tmp_path):
    folder = tmp_path / "nocaps"
    fx.write_parquet(
        folder / "data" / "validation-00000-of-00001.parquet",
        [
            {
                "image": fx.png_cell("a.jpg"),
                "image_id": 7,
                "image_file_name": "a.jpg",
                "annotations_captions": ["a cat", "a small cat"],
            },
            {
                "image": fx.png_cell("b.jpg", 1),
                "image_id": 8,
                "image_file_name": "b.jpg",
                "annotations_captions": ["a dog"],
            },
        ],
    )
    docs = registry.get_task("nocaps").load(tmp_path).docs
    assert [d.id for d in docs] == ["7", "8"]
    assert docs[0].fields["references"] == ["a cat", "a small cat"]
    assert docs[0].fields["domain"] is None
    assert docs[1].images[0].open().size == (6, 5)


# -- Flickr30K --------------------------------------------------------------------------------
def test_flickr30k_reads_only_the_karpathy_test_split(tmp_path):
    root = fx.write_flickr_karpathy(tmp_path)
    docs = registry.get_task("flickr30k").load(root).docs
    assert [d.id for d in docs] == ["1000268201", "1000366164"]
    assert docs[0].fields["references"] == fx.FLICKR[2][2]
    assert docs[0].images[0].key == "flickr30k-images/1000268201.jpg"


def test_flickr30k_coco_style_file_gives_the_same_documents(tmp_path):
    karpathy = registry.get_task("flickr30k").load(fx.write_flickr_karpathy(tmp_path / "k")).docs
    coco = registry.get_task("flickr30k").load(fx.write_flickr_coco_style(tmp_path / "c")).docs
    assert [(d.id, d.images[0].key, d.fields["references"]) for d in coco] == [
        (d.id, d.images[0].key, d.fields["references"]) for d in karpathy
    ]


@pytest.mark.parametrize("shots", [4, 8, 16])
def test_flickr30k_fewshot_variants_are_registered(shots):
    assert f"flickr30k_{shots}shot" in registry.groups()[f"fewshot-{shots}"]


def test_flickr30k_fewshot_prompt_uses_train_images_only(tmp_path):
    root = fx.write_flickr_karpathy(tmp_path)
    train = {name: refs for name, split, refs in fx.FLICKR if split == "train"}
    run = prepare_task("flickr30k_4shot", root, QWEN_VL.info, seed=1)
    text = render_raw(run.requests[0].parts)
    shot = r"<img>flickr30k-images/(\d+\.jpg)</img>Describe the image in English: ([^<]*)"
    m = re.fullmatch(
        f"({shot}){{4}}<img>flickr30k-images/1000268201.jpg</img>Describe the image in English:",
        text,
    )
    assert m is not None, text
    pairs = re.findall(shot, text)[:4]
    assert len({name for name, _ in pairs}) == 4
    for name, caption in pairs:
        assert caption == train[name][0]  # the example's first reference, after one space
    again = prepare_task("flickr30k_4shot", root, QWEN_VL.info, seed=1)
    assert render_raw(again.requests[0].parts) == text


def test_flickr30k_fewshot_needs_enough_train_images(tmp_path):
    root = fx.write_flickr_karpathy(tmp_path)  # 5 train images
    with pytest.raises(DataError, match="8-shot"):
        prepare_task("flickr30k_8shot", root, QWEN_VL.info)


def test_flickr30k_lmms_lab_parquet_is_cut_to_the_karpathy_split(tmp_path):
    root = fx.write_flickr_karpathy(tmp_path)
    folder = root / "flickr30k"
    for img in (folder / "flickr30k-images").iterdir():
        img.unlink()
    (folder / "flickr30k-images").rmdir()
    rows = [
        {"image": fx.png_cell(name, n), "filename": name, "caption": refs, "img_id": str(n)}
        for n, (name, _, refs) in enumerate(reversed(fx.FLICKR))
    ]
    fx.write_parquet(folder / "data" / "test-00000-of-00001.parquet", rows)
    docs = registry.get_task("flickr30k").load(root).docs
    assert [d.id for d in docs] == ["1000268201", "1000366164"]  # Karpathy order
    assert docs[1].images[0].key == "1000366164.jpg"
    (folder / "dataset_flickr30k.json").unlink()
    with pytest.raises(DataError, match="Karpathy test split"):
        registry.get_task("flickr30k").load(root)


# -- bad input --------------------------------------------------------------------------------
def test_caption_missing_file_names_it(tmp_path):
    (tmp_path / "nocaps").mkdir()
    with pytest.raises(DataError, match=r"nocaps_val_4500_captions\.json: file not found"):
        registry.get_task("nocaps").load(tmp_path)


def _edit_nocaps(root, edit):
    import json

    path = root / "nocaps" / "nocaps_val_4500_captions.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_caption_malformed_annotation_names_item_and_field(tmp_path):
    root = fx.write_nocaps(tmp_path)
    _edit_nocaps(root, lambda d: d["annotations"][3].pop("caption"))
    with pytest.raises(DataError, match=r"item annotations\[3\], field 'caption': missing"):
        registry.get_task("nocaps").load(root)


def test_nocaps_unknown_domain_is_refused(tmp_path):
    root = fx.write_nocaps(tmp_path)
    _edit_nocaps(root, lambda d: d["images"][1].update(domain="far-domain"))
    with pytest.raises(DataError, match=r"item 1, field 'domain': unknown domain"):
        registry.get_task("nocaps").load(root)


def test_caption_image_path_may_not_leave_the_data_root(tmp_path):
    root = fx.write_nocaps(tmp_path)
    _edit_nocaps(root, lambda d: d["images"][0].update(file_name="../../../etc/passwd"))
    with pytest.raises(DataError, match=r"item 0, field 'file_name': .*leaves the data root"):
        registry.get_task("nocaps").load(root)


def test_caption_missing_image_is_reported_at_load(tmp_path):
    root = fx.write_flickr_karpathy(tmp_path)
    (root / "flickr30k/flickr30k-images/1000366164.jpg").unlink()
    with pytest.raises(DataError, match=r"item 1000366164, field 'filename': image not found"):
        registry.get_task("flickr30k").load(root)


# -- bundled mini sets ------------------------------------------------------------------------
def test_builtin_caption_sets():
    nocaps = registry.get_task("nocaps").load(builtin_root()).docs
    assert len(nocaps) >= 32
    assert {d.fields["domain"] for d in nocaps} == {"in-domain", "near-domain", "out-domain"}
    flickr = registry.get_task("flickr30k").load(builtin_root()).docs
    train = registry.get_task("flickr30k_16shot").train_source.load(builtin_root())
    assert len(flickr) >= 32 and len(train) >= 16
    assert not {d.id for d in flickr} & {d.id for d in train}
