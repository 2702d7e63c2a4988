"""Hugging Face copies read through `datasets` (parquet shards, save_to_disk folders, the local
hub cache), the other layouts in common use, and `data check` telling the truth about all of
them (it once said "missing" for copies that `run` reads)."""

from __future__ import annotations

import json
import shutil

import pytest

from qwenvl_eval import registry
from qwenvl_eval.evaluator import evaluate, prepare_task
from qwenvl_eval.model.families import QWEN_VL
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.check import check_tasks
from qwenvl_eval.tasks.data.hf_parquet import ArrowImageRef
from tests.fakes import FakeRunner
from tests.tasks import _docs_fixtures as dfx
from tests.tasks import _vqa_fixtures as vfx
from tests.test_cli import run_cli

TEN = [{"answer": "red", "answer_confidence": "yes", "answer_id": i} for i in range(1, 11)]


def _vqa_rows(n: int, answers: bool = True, qid=lambda k: 100 + k):
    rows = []
    for k in range(n):
        row = {"question_id": qid(k), "question": f"Q{k}?", "image": dfx.png_cell(f"{k}.png", k)}
        if answers:
            row["answers"] = TEN
        rows.append(row)
    return rows


# task -> (parquet path under the data root, rows), as the lmms-lab repositories lay them out
PARQUET = {
    "vqav2": ("vqav2/data/validation-00000-of-00001.parquet", _vqa_rows(2)),
    "vqav2_testdev": ("vqav2/data/testdev-00000-of-00001.parquet", _vqa_rows(2, False)),
    "okvqa": ("okvqa/data/val2014-00000-of-00001.parquet", _vqa_rows(2)),
    "vizwiz": ("vizwiz/data/val-00000-of-00001.parquet", _vqa_rows(2)),
    "vizwiz_test": ("vizwiz/data/test-00000-of-00001.parquet", _vqa_rows(2, False)),
    "textvqa": ("textvqa/data/validation-00000-of-00001.parquet", _vqa_rows(2)),
    "refcoco_val": (
        "refcoco/data/val-00000-of-00001.parquet",
        [
            {
                "question_id": "7",
                "image": dfx.png_cell("a.png"),
                "bbox": [1.0, 2.0, 3.0, 2.0],
                "answer": ["the dog", "a brown dog"],
            }
        ],
    ),
}


def _write_gqa_parquet(root):
    dfx.write_parquet(
        root / "gqa/testdev_balanced_instructions/testdev-00000-of-00001.parquet",
        [{"id": "201", "imageId": "n1", "question": "Q?", "answer": "red"}],
    )
    dfx.write_parquet(
        root / "gqa/testdev_balanced_images/testdev-00000-of-00001.parquet",
        [{"id": "n1", "image": dfx.png_cell("n1.jpg")}],
    )


@pytest.mark.parametrize("name", sorted(PARQUET) + ["gqa"])
def test_data_check_finds_the_parquet_copies_run_reads(name, tmp_path, capsys):
    if name == "gqa":
        _write_gqa_parquet(tmp_path)
        n_items = 1
    else:
        rel, rows = PARQUET[name]
        dfx.write_parquet(tmp_path / rel, rows)
        n_items = 2
    (row,) = check_tasks([name], str(tmp_path))
    assert row.status == "partial" and row.items == n_items, row.detail
    assert row.format == "hf parquet" and row.files and all("sha256" in f for f in row.files)
    run = prepare_task(name, tmp_path, QWEN_VL.info)
    assert len(run.docs) == n_items and run.data["format"] == "hf parquet"
    code, out, _ = run_cli(["data", "check", "--tasks", name, "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and "hf parquet" in out and "sha256" in out


def test_data_check_finds_the_vqa_jsonl(tmp_path):
    folder = tmp_path / "vqav2"
    vfx.jpg(folder / "imgs" / "a.jpg")
    row = {"question_id": 7, "image": "imgs/a.jpg", "question": "Q?", "answers": ["red"] * 10}
    (folder / "val.jsonl").write_text(json.dumps(row) + "\n")
    (check,) = check_tasks(["vqav2"], str(tmp_path))
    assert (check.status, check.items, check.format) == ("partial", 1, "jsonl")


def test_images_stay_encoded_and_unread_until_opened(tmp_path):
    rel, rows = PARQUET["vqav2"]
    dfx.write_parquet(tmp_path / rel, rows)
    docs = registry.get_task("vqav2").load(tmp_path).docs
    image = docs[1].images[0]
    assert isinstance(image, ArrowImageRef) and image.data is None and image.key == "1.png"
    assert image.materialize().data == rows[1]["image"]["bytes"]
    assert image.open().size == (6, 5)


def _save_to_disk(folder, split, rows):
    import datasets

    features = datasets.Features(
        {
            "question_id": datasets.Value("int64"),
            "question": datasets.Value("string"),
            "answers": [{"answer": datasets.Value("string")}],
            "image": datasets.Image(),
        }
    )
    table = {k: [r[k] for r in rows] for k in ("question_id", "question", "image")}
    table["answers"] = [[{"answer": a["answer"]} for a in r["answers"]] for r in rows]
    ds = datasets.Dataset.from_dict(table, features=features)
    datasets.DatasetDict({split: ds}).save_to_disk(str(folder))


def test_save_to_disk_folder(tmp_path):
    rows = _vqa_rows(3)
    _save_to_disk(tmp_path / "vqav2", "validation", rows)
    run = prepare_task("vqav2", tmp_path, QWEN_VL.info)
    assert [d.id for d in run.docs] == ["100", "101", "102"]
    assert run.docs[0].fields["answers"] == ["red"] * 10
    assert run.data["format"] == "hf save_to_disk"
    image = run.docs[2].images[0]
    assert isinstance(image, ArrowImageRef)  # memory-mapped, fetched on open
    assert image.materialize().data == rows[2]["image"]["bytes"]
    files = {f["path"] for f in run.data["files"]}
    assert "vqav2/validation/state.json" in files


def _hub_cache(monkeypatch, tmp_path, repo: str, rel: str, rows) -> None:
    """A dataset repository as huggingface_hub caches it: refs/main -> snapshots/<commit>/."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"datasets--{repo.replace('/', '--')}"
    dfx.write_parquet(repo_dir / "snapshots" / commit / rel, rows)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))


def test_hub_id_in_the_local_cache_is_read_offline(tmp_path, monkeypatch):
    _hub_cache(
        monkeypatch, tmp_path, "lmms-lab/VQAv2", "data/validation-00000-of-00001.parquet",
        _vqa_rows(2),
    )  # fmt: skip
    root = tmp_path / "data"
    (root / "vqav2").mkdir(parents=True)
    run = prepare_task("vqav2", root, QWEN_VL.info, data_layout="hf")
    assert [d.id for d in run.docs] == ["100", "101"]
    assert run.data["format"] == "hf hub cache lmms-lab/VQAv2"


def test_official_files_win_unless_the_user_asks_for_the_hf_copy(tmp_path):
    root = vfx.write_vqav2(tmp_path)
    rel, rows = PARQUET["vqav2"]
    dfx.write_parquet(root / rel, rows)
    auto = prepare_task("vqav2", root, QWEN_VL.info)
    assert auto.data["format"] == "official" and len(auto.docs) == 3
    hf = prepare_task("vqav2", root, QWEN_VL.info, data_layout="hf")
    assert hf.data["format"] == "hf parquet" and len(hf.docs) == 2


# -- other layouts in common use ------------------------------------------------------------
def test_docvqa_string_question_id_is_an_int_in_the_submission(tmp_path):
    rows = [
        {"questionId": "57344", "question": "Q?", "image": dfx.png_cell("a.png")},
        {"questionId": "61", "question": "R?", "image": dfx.png_cell("b.png")},
    ]
    dfx.write_parquet(tmp_path / "docvqa/DocVQA/test-00000-of-00001.parquet", rows)
    run = prepare_task("docvqa_test", tmp_path, QWEN_VL.info)
    store = PredictionStore(tmp_path / "run")
    (result,) = evaluate([run], FakeRunner(lambda r: "x", family=QWEN_VL), store)
    sub = json.loads((store.run_dir / result.submission_file).read_text())
    assert sub == [{"questionId": 57344, "answer": "x"}, {"questionId": 61, "answer": "x"}]


def test_chartqa_repository_layout(tmp_path):
    dfx.write_chartqa(tmp_path)
    shutil.move(tmp_path / "chartqa" / "test", tmp_path / "chart_test")
    (tmp_path / "chartqa" / "ChartQA Dataset").mkdir()
    shutil.move(tmp_path / "chart_test", tmp_path / "chartqa" / "ChartQA Dataset" / "test")
    run = prepare_task("chartqa", tmp_path, QWEN_VL.info)
    assert [d.id for d in run.docs] == ["human-0", "human-1", "augmented-0", "augmented-1"]
    assert run.data["format"] == "repository layout"
    path = run.docs[0].images[0].path
    assert path == tmp_path / "chartqa/ChartQA Dataset/test/png/41699051005347.png"


def test_gqa_as_lavis_ships_it(tmp_path):
    folder = tmp_path / "gqa"
    vfx.jpg(folder / "images" / "n161313.jpg")
    rows = [
        {"image": "n161313.jpg", "question_id": "20968379", "question": "Q?", "answer": "yes"},
        {"image": "n161313.jpg", "question_id": 2033, "question": "R?", "answer": "dog"},
    ]
    dfx.write_json(folder / "testdev_balanced_questions.json", rows)
    run = prepare_task("gqa", tmp_path, QWEN_VL.info)
    assert [d.id for d in run.docs] == ["20968379", "2033"]
    assert run.docs[1].fields["answer"] == "dog"
    assert run.data["format"] == "LAVIS list"


def test_scienceqa_img_standalone_parquet(tmp_path):
    rows = [
        {
            "image": dfx.png_cell("0.png"),
            "question": "Which one?",
            "choices": ["hard", "soft"],
            "answer": 1,
            "hint": "",
            "subject": "natural science",
            "grade": "grade2",
        }
    ]
    dfx.write_parquet(tmp_path / "scienceqa/data/test-00000-of-00001.parquet", rows)
    run = prepare_task("scienceqa_img", tmp_path, QWEN_VL.info)
    assert [d.fields["answer"] for d in run.docs] == [1]
    assert run.data["format"] == "hf parquet"
    # The image-only copy is not a source for the all-questions task.
    (row,) = check_tasks(["scienceqa"], str(tmp_path))
    assert row.status == "missing"
