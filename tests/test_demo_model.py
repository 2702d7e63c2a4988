"""The shipped demo checkpoints (scripts/train_demo_model.py): trained apart from the
evaluation items, above chance on the README demo's tasks, and a weaker checkpoint that the
regression gate catches. Nothing is trained here: the shipped weights are loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwenvl_eval.metrics import vqa_accuracy
from scripts.builtin.vqa_grounding import QUESTIONS
from scripts.train_demo_model import assert_apart, make_training_data

BUILTIN = Path(__file__).resolve().parents[1] / "qwenvl_eval" / "tasks" / "builtin"


def qwenvl_eval(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ | {"COLUMNS": "200"},
    )


def run_model(model: str, tasks: str, out: Path) -> Path:
    done = qwenvl_eval(
        "run", "--model", model, "--tasks", tasks, "--data-dir", "builtin", "--output-dir", str(out)
    )
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    return run_dir


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The README's demo command, on the shipped demo checkpoint."""
    return run_model("demo-qwen2-vl", "vqav2,refcoco", tmp_path_factory.mktemp("demo"))


def test_training_items_are_apart_from_the_evaluation_items(tmp_path):
    make_training_data(tmp_path)
    assert_apart(tmp_path, BUILTIN)
    with pytest.raises(AssertionError, match="training images are evaluation images"):
        assert_apart(BUILTIN, BUILTIN)  # the check can fail


def _chance_vqa(rows: list[dict], questions: dict[str, str], answers: dict[str, list]) -> float:
    """Expected VQA accuracy of a uniform guess among the answers its question type allows."""
    choices = {text: options for text, _, _, options in QUESTIONS}
    total = 0.0
    for r in rows:
        options = choices[questions[r["id"]]]
        total += sum(vqa_accuracy(o, answers[r["id"]]) for o in options) / len(options)
    return 100 * total / len(rows)


def test_demo_model_scores_above_chance(demo_run):
    results = json.loads((demo_run / "results.json").read_text())
    vqa = results["tasks"]["vqav2"]["metrics"]["vqa_acc"]
    rows = [json.loads(x) for x in (demo_run / "vqav2.predictions.jsonl").read_text().splitlines()]
    qs = json.loads((BUILTIN / "vqav2" / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    anns = json.loads((BUILTIN / "vqav2" / "v2_mscoco_val2014_annotations.json").read_text())
    questions = {str(q["question_id"]): q["question"] for q in qs["questions"]}
    answers = {
        str(a["question_id"]): [x["answer"] for x in a["answers"]] for a in anns["annotations"]
    }
    # The bundled answers are drawn uniformly among the answers a question type allows,
    # apart from the image: a uniform guess among them is the most any model can expect.
    # The demo reaches that level (the random-weight model scores 0) by answering each
    # question in its own answer vocabulary.
    chance = _chance_vqa(rows, questions, answers)
    assert vqa > 0.75 * chance > 20, (vqa, chance)
    choices = {text: set(options) for text, _, _, options in QUESTIONS}
    valid = [r["output"].strip() in choices[questions[r["id"]]] for r in rows]
    assert sum(valid) >= 0.8 * len(rows), [r["output"] for r in rows]
    assert len({r["output"] for r in rows}) > 2
    ref = results["tasks"]["refcoco_val"]["metrics"]
    assert ref["miou"] > 0 and ref["parse_failures"] <= 2  # a box in the Qwen2-VL format
    boxes = [
        json.loads(x)["answer"]
        for x in (demo_run / "refcoco_val.predictions.jsonl").read_text().splitlines()
    ]
    assert all(b[0] < b[2] and b[1] < b[3] for b in boxes if b)  # coherent corners


def test_compare_flags_the_weaker_checkpoint(demo_run, tmp_path):
    weak = run_model("demo-qwen2-vl-weak", "vqav2", tmp_path / "weak")
    # compare writes its summary files into the working folder: a scratch one
    # (the weaker checkpoint answers vqav2 only: the gate must be told refcoco_val is left out)
    done = qwenvl_eval("compare", str(demo_run), str(weak), "--allow-missing-tasks", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSION" in done.stdout
    # and not the other way round: the stronger one against the weaker is no regression
    back = qwenvl_eval("compare", str(weak), str(demo_run), cwd=tmp_path)
    assert "REGRESSION" not in back.stdout


def test_shipped_weights_are_the_scripts_recipe():
    """Each shipped checkpoint records the script's seed and step count, and the presets
    install exactly the shipped files."""
    from qwenvl_eval.model import demo
    from qwenvl_eval.model.presets import PRESETS, resolve_model
    from scripts.train_demo_model import CHECKPOINTS, DEMO_DIR, SEED

    for name, steps in CHECKPOINTS:
        meta = json.loads((DEMO_DIR / name / "TRAINING.json").read_text())
        assert (meta["seed"], meta["steps"]) == (SEED, steps)
        size = (DEMO_DIR / name / "model.safetensors").stat().st_size
        assert size < 4 * 2**20  # a few MB at most in the package
        preset = f"demo-{name}"
        assert PRESETS[preset].family == "qwen2-vl"
        installed = resolve_model(preset).path
        for f in (DEMO_DIR / name).iterdir():
            assert (installed / f.name).read_bytes() == f.read_bytes(), f.name
    assert demo.WEIGHTS == DEMO_DIR
