"""The contributor guides' worked example is a real plug-in (examples/qwenvl-eval-toy-plugin):
installed with pip next to the harness, its task is listed, its backend's flag is on `run`
(no edit to the CLI), and runs give the expected scores. The guides' code is the example's:
each snippet in docs/adding-a-*.md must equal the region of the file it names."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from qwenvl_eval.errors import UserError
from qwenvl_eval.model import backends
from qwenvl_eval.model.backends import Backend, Option

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "qwenvl-eval-toy-plugin"
GUIDES = [ROOT / "docs" / "adding-a-task.md", ROOT / "docs" / "adding-a-backend.md"]

# <!-- snippet: examples/.../file.py#region --> followed by a fenced block.
SNIPPET = re.compile(r"<!-- snippet: (\S+?)(?:#(\S+))? -->\n```\w*\n(.*?)```", re.S)
FENCE = re.compile(r"^```(python|toml)$", re.M)


def region(path: Path, name: str | None) -> str:
    text = path.read_text(encoding="utf-8")
    if name is None:
        return text
    start, end = f"# --8<-- [start:{name}]\n", f"# --8<-- [end:{name}]"
    assert start in text and end in text, f"{path}: no region {name!r}"
    # Without the blank lines the formatter puts before a top-level comment.
    return text.split(start, 1)[1].split(end, 1)[0].rstrip("\n") + "\n"


def test_every_code_snippet_in_the_guides_is_the_example_code():
    seen = 0
    for guide in GUIDES:
        text = guide.read_text(encoding="utf-8")
        snippets = SNIPPET.findall(text)
        # Every python/toml block is one of the example's regions: none can drift unseen.
        assert len(snippets) == len(FENCE.findall(text)), f"{guide.name}: a code block has no tag"
        for rel, name, code in snippets:
            expected = region(ROOT / rel, name or None)
            assert code == expected, f"{guide.name}: the snippet of {rel}#{name} differs from it"
            seen += 1
    assert seen >= 6


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """The example installed by pip into its own folder, seen by the harness via PYTHONPATH.
    Built from a copy, so that the build leaves nothing in the source tree."""
    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "source"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    offline = ["--no-index", "--no-deps", "--no-build-isolation", "--target", str(site)]
    done = subprocess.run([*pip, *offline, str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"  # one help line per flag
    env.pop("QWENVL_EVAL_DATA", None)
    return env


def harness(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qwenvl_eval", *args], capture_output=True, text=True, env=env
    )


def harness_together(env: dict[str, str], *argvs: list[str]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "qwenvl_eval", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for argv in argvs
    ]
    done = []
    for p in procs:
        out, err = p.communicate()  # sets returncode
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def test_the_plugin_task_is_listed(plugin_env):
    done = harness(plugin_env, "tasks")
    assert done.returncode == 0, done.stderr
    assert "toy_colours" in done.stdout
    # `data check` reads the plug-in's bundled split through the same format declaration.
    done = harness(plugin_env, "data", "check", "--tasks", "toy_colours", "--data-dir", "builtin")
    assert done.returncode == 0, done.stderr
    assert "qwenvl_eval_toy/data/toy_colours/items.jsonl" in done.stdout


def test_the_plugin_backend_adds_its_flag_to_run(plugin_env):
    done = harness(plugin_env, "run", "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "--toy-answer" in text
    assert "toy: answer this word to every question instead of looking at the image." in text
    # The declaration module may be imported first: it imports the table, which loads it.
    first = [sys.executable, "-c", "import qwenvl_eval_toy.backend as b; print(b.TOY.name)"]
    done = subprocess.run(first, capture_output=True, text=True, env=plugin_env)
    assert (done.returncode, done.stdout) == (0, "toy\n"), done.stderr


def test_runs_with_the_plugin_give_the_expected_scores(plugin_env, tmp_path):
    base = ["run", "--model", "tiny-qwen2-vl", "--tasks", "toy", "--backend", "toy"]
    base += ["--data-dir", "builtin", "--output-dir", str(tmp_path)]
    # Two processes at once: each spends most of its time importing the harness.
    looked, fixed = harness_together(
        plugin_env, base, [*base, "--toy-answer", "red", "--batch-size", "3"]
    )
    assert looked.returncode == 0, looked.stderr
    assert fixed.returncode == 0, fixed.stderr
    runs, outputs = {}, {}
    for results in tmp_path.glob("*/results.json"):
        data = json.loads(results.read_text())
        key = json.dumps(data["config"]["backend_options"])
        runs[key] = data
        lines = (results.parent / "toy_colours.predictions.jsonl").read_text().splitlines()
        outputs[key] = {item["id"]: item["output"] for item in map(json.loads, lines)}
    assert set(runs) == {"{}", '{"toy_answer": "red"}'}  # the option is in the fingerprint
    looked_task = runs["{}"]["tasks"]["toy_colours"]
    fixed_task = runs['{"toy_answer": "red"}']["tasks"]["toy_colours"]
    # The engine names each square's colour: all 4 right; answering "red" gets 2 of 4.
    assert looked_task["metrics"] == {"exact_match": 100.0, "wrong": 0.0}
    assert fixed_task["metrics"] == {"exact_match": 50.0, "wrong": 2.0}
    assert fixed_task["metric_meanings"]["wrong"] == {
        "item_key": None,
        "item_scale": 100.0,
        "right_at": None,
        "higher_is_better": False,
    }
    assert fixed_task["metric_meanings"]["exact_match"]["item_key"] == "exact_match"
    note = (
        "--batch-size 3 is not used by --backend toy: the toy engine answers one request at a time"
    )
    assert note in fixed_task["notes"] and note not in looked_task["notes"]
    model = runs["{}"]["model"]
    assert (model["backend_name"], model["backend_version"]) == ("toy", "0.1.0")
    assert outputs["{}"] == {"c1": "red", "c2": "green", "c3": "blue", "c4": "red"}
    assert set(outputs['{"toy_answer": "red"}'].values()) == {"red"}


def test_a_flag_of_the_plugin_backend_is_refused_with_another(plugin_env, tmp_path):
    done = harness(
        plugin_env,
        *["run", "--model", "tiny-qwen2-vl", "--tasks", "toy_colours", "--toy-answer", "red"],
        *["--data-dir", "builtin", "--output-dir", str(tmp_path)],
    )
    assert done.returncode == 2
    assert "--toy-answer does not apply to --backend hf (it is for --backend toy)" in done.stderr
    assert "Traceback" not in done.stderr


# ---- the entry-point hook itself, with entry points made here ------------------------------
CLASHING = Backend("hf", "nowhere:load", "nowhere")
ANOTHER = Backend("another", "nowhere:load", "nowhere", options=(Option("another_knob", int),))


def register_another() -> None:
    backends.register(ANOTHER)


def _load_with(monkeypatch, *values: str) -> None:
    eps = [EntryPoint(f"ep{n}", v, backends.ENTRY_POINT_GROUP) for n, v in enumerate(values)]
    monkeypatch.setattr(
        backends, "entry_points", lambda group: eps if group == eps[0].group else []
    )
    monkeypatch.setattr(backends, "BACKENDS", dict(backends.BACKENDS))  # restored after
    backends.load_plugins()


def test_an_entry_point_names_a_backend_or_a_function_registering_some(monkeypatch):
    _load_with(monkeypatch, f"{__name__}:register_another")
    assert backends.get_backend("another") is ANOTHER
    assert "another_knob" in backends.get_backend("another").option_names


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "no_such_module_qwenvl:TOY",
            r"^backend plug-in 'ep0' \(no_such_module_qwenvl:TOY\) failed",
        ),
        (f"{__name__}:CLASHING", r"backend 'hf' exists already$"),
        (f"{__name__}:GUIDES", r"expected a Backend or a function, got list$"),
    ],
)
def test_a_bad_backend_plugin_is_one_error_naming_it(monkeypatch, value, message):
    with pytest.raises(UserError, match=message):
        _load_with(monkeypatch, value)
