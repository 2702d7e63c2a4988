"""The optional LLM judge (judge.py): a scoring-time step that asks a real local HTTP server
(an OpenAI-compatible chat completions endpoint scripted per item, with injected faults)
about the answers the rules could not read; what it changes, what it records, what resume
and rescore reuse, what a failure leaves, and that without --judge-* nothing is sent."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qwenvl_eval.evaluator import evaluate, prepare_task, rescore_task
from qwenvl_eval.judge import Judge, JudgeOptions, judge_key
from qwenvl_eval.metrics.mathvista import mathvista_extract, mathvista_extraction_prompt
from qwenvl_eval.metrics.vlmeval_choice import (
    CHOICE_JUDGE_SOURCE,
    CHOICE_JUDGE_SOURCE_CN,
    choice_judge_prompt,
    infer_choice,
)
from qwenvl_eval.model.families import QWEN2_VL
from qwenvl_eval.results.runs import load_run
from qwenvl_eval.results.scoretable import runs_table
from qwenvl_eval.results.store import PredictionStore
from qwenvl_eval.tasks.data.locate import builtin_root
from qwenvl_eval.tasks.qwen2vl_choice import JUDGE_CN, JUDGE_EN
from tests.fakes import FakeRunner, run_cli
from tests.metrics._data import FIXTURES

KEY = "sk-judge-test-5f3a9c"
ITEM = re.compile(r"\(item ([^)]+)\)")


class JudgeServer:
    """`POST /v1/chat/completions` answered by `reply(prompt) -> (status, text)`; status 0
    stalls past the client's deadline. Every prompt received is kept, in order."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.prompts: list[str] = []
        self.auth: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                (message,) = body["messages"]
                prompt = message["content"]
                server.prompts.append(prompt)
                server.auth.append(self.headers.get("Authorization"))
                status, text = server.reply(prompt)
                if status == 0:
                    time.sleep(5)
                    return
                if status != 200:  # the server's words echo the key: it must be redacted
                    payload = {"error": {"message": f"{text} ({self.headers['Authorization']})"}}
                else:
                    payload = {
                        "id": "x",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                blob = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve():
    servers: list[JudgeServer] = []

    def start(reply) -> JudgeServer:
        servers.append(JudgeServer(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _judge(server: JudgeServer, monkeypatch, retries: int = 1) -> Judge:
    monkeypatch.setenv("QWENVL_TEST_JUDGE_KEY", KEY)
    return Judge(
        JudgeOptions(
            server.url, "judge-model", "QWENVL_TEST_JUDGE_KEY", request_timeout=2.5,
            max_retries=retries,
        )
    )  # fmt: skip


def _evaluate(name, answers, store, judge=None):
    run = prepare_task(name, builtin_root(), QWEN2_VL.info, judge=judge)
    texts = {d.id: answers(d) for d in run.docs}
    runner = FakeRunner(lambda r: texts[r.id])
    (result,) = evaluate([run], runner, store)
    return result, {d.id: d for d in run.docs}, runner


def _records(store: PredictionStore, task: str) -> list[dict]:
    path = store.judge_file(task)
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- MathVista: the official extraction prompt ---------------------------------------------
def _mathvista_answers(doc):
    f = doc.fields
    if f["answer_type"] == "integer":
        return f"I count them: about {f['answer']} (item {doc.id})."  # no rule reads this
    return f'The answer is "{f["answer"]}".'


def test_mathvista_judged_items_change_the_score_and_are_recorded(tmp_path, serve, monkeypatch):
    failing: set[str] = set()

    def reply(prompt):
        item = ITEM.findall(prompt)[-1]
        if item in failing:
            return 500, "upstream down"
        said = re.findall(r"about (\S+) ", prompt)[-1]
        return 200, f"  {said}\n"

    server = serve(reply)
    store = PredictionStore(tmp_path)
    # Without a judge: the rules read nothing for integer questions.
    rules, docs, _ = _evaluate("mathvista_testmini", _mathvista_answers, store)
    integer = sorted(i for i, d in docs.items() if d.fields["answer_type"] == "integer")
    assert len(integer) >= 2
    n = len(docs)
    assert rules.metrics["acc"] == pytest.approx(100 * (n - len(integer)) / n)
    assert any("scored by rules only" in note and f"{len(integer)} such item(s)" in note
               for note in rules.notes)  # fmt: skip
    assert server.prompts == [] and not store.judge_file("mathvista_testmini").exists()

    failing.add(integer[0])
    judge = _judge(server, monkeypatch)
    judged, _, runner = _evaluate("mathvista_testmini", _mathvista_answers, store, judge)
    assert runner.seen == []  # every answer resumed: the judge is a scoring step
    # Every integer item right by the judge's extraction, except the one whose call failed.
    assert judged.metrics["acc"] == pytest.approx(100 * (n - 1) / n)
    assert judged.metrics["acc/answer_type/integer"] == pytest.approx(
        100 * (len(integer) - 1) / len(integer)
    )
    # One call per item, the failing one retried once by the client (--max-retries 1).
    assert len(server.prompts) == len(integer) + 1
    assert set(server.auth) == {f"Bearer {KEY}"}
    records = {r["id"]: r for r in _records(store, "mathvista_testmini")}
    assert sorted(records) == integer
    ok = records[integer[1]]
    doc = docs[integer[1]]
    assert ok["request"] == mathvista_extraction_prompt(
        doc.fields["question"], _mathvista_answers(doc)
    )
    assert ok["request"].startswith("Please read the following example.")
    assert ok["request"].endswith(f"(item {doc.id}).\n\nExtracted answer: ")
    assert ok["response"].strip() == doc.fields["answer"] and ok["answer"] == doc.fields["answer"]
    assert ok["judge_model"] == "judge-model" and ok["base_url"] == server.url
    assert ok["error"] is None and ok["prompt"] == "mathvista-extract-answer"
    bad = records[integer[0]]
    assert bad["response"] is None and bad["answer"] is None
    assert "500" in bad["error"] and "[API key redacted]" in bad["error"]
    assert KEY not in store.judge_file("mathvista_testmini").read_text()
    note = next(x for x in judged.notes if x.startswith("LLM judge"))
    assert f"judge-model at {server.url}" in note
    assert f"{len(integer)} item(s) the rules could not read were judged (0 reused" in note
    assert f"{len(integer) - 1} read from its reply, 1 call(s) failed" in note
    saved = store.load("mathvista_testmini")
    assert saved[integer[1]].score == {"acc": 1.0}
    assert saved[integer[1]].extra["judge"]["rules"]["score"] == {"acc": 0.0}
    assert saved[integer[0]].score == {"acc": 0.0} and "judge" not in saved[integer[0]].extra

    # Resume with the judge healthy again: only the failed item is asked, nothing twice.
    failing.clear()
    before = len(server.prompts)
    again, _, runner = _evaluate("mathvista_testmini", _mathvista_answers, store, judge)
    assert runner.seen == [] and len(server.prompts) == before + 1
    assert ITEM.findall(server.prompts[-1])[-1] == integer[0]
    assert again.metrics["acc"] == 100.0
    assert f"({len(integer) - 1} reused from mathvista_testmini.judge.jsonl)" in next(
        x for x in again.notes if x.startswith("LLM judge")
    )

    # Rescore with the judge: every reply from the file, no call; without it: the rules.
    run = prepare_task("mathvista_testmini", builtin_root(), QWEN2_VL.info, judge=judge)
    assert rescore_task(run, store, QWEN2_VL.info).metrics["acc"] == 100.0
    assert len(server.prompts) == before + 1
    plain = prepare_task("mathvista_testmini", builtin_root(), QWEN2_VL.info)
    assert rescore_task(plain, store, QWEN2_VL.info).metrics == rules.metrics
    # And a resumed run without the judge is scored by its rules, not by saved judgements.
    back, _, _ = _evaluate("mathvista_testmini", _mathvista_answers, store)
    assert back.metrics == rules.metrics and back.notes == rules.notes


def test_mathvista_judge_reads_only_what_the_rules_cannot():
    # The official rule part reads these; the judge is asked only for the rest.
    assert mathvista_extract("7", "free_form", "integer", None) == "7"
    assert mathvista_extract("about 7", "free_form", "integer", None) == ""
    prompt = mathvista_extraction_prompt("Hint: h\nQuestion: q", "about 7")
    assert prompt.count("Extracted answer: ") == 6  # five examples, then the item's
    assert "\n\nHint: h\nQuestion: q\n\nabout 7\n\nExtracted answer: " in prompt


# -- MMBench: CircularEval with the judge as fallback --------------------------------------
def test_mmbench_judge_fallback_and_a_timeout(tmp_path, serve, monkeypatch):
    store = PredictionStore(tmp_path)
    run = prepare_task("mmbench_dev_en", builtin_root(), QWEN2_VL.info)
    docs = {d.id: d for d in run.docs}

    def answers(doc):
        return f"Hmm, hard to tell (item {doc.id})"

    assert all(infer_choice(answers(d), d.fields["options"]) is None for d in docs.values())
    groups: dict[int, list[str]] = {}
    for d in run.docs:
        groups.setdefault(d.fields["group"], []).append(d.id)
    assert len(groups) >= 3 and all(len(g) >= 2 for g in groups.values())
    g_wrong, g_stall, *_ = groups.values()
    wrong, stall = g_wrong[1], g_stall[0]

    def reply(prompt):
        item = ITEM.findall(prompt)[-1]
        right = docs[item].fields["answer"]
        if item == stall:
            return 0, ""
        if item == wrong:
            return 200, next(k for k in docs[item].fields["options"] if k != right)
        return 200, f"{right}"

    server = serve(reply)
    result, _, _ = _evaluate("mmbench_dev_en", answers, store, _judge(server, monkeypatch, 0))
    n_q, n_rot = len(groups), len(docs)
    assert result.metrics["circular_acc"] == pytest.approx(100 * (n_q - 2) / n_q)
    assert result.metrics["acc"] == pytest.approx(100 * (n_rot - 2) / n_rot)
    records = {r["id"]: r for r in _records(store, "mmbench_dev_en")}
    assert sorted(records) == sorted(docs)
    doc = docs[wrong]
    assert records[wrong]["request"] == choice_judge_prompt(
        doc.fields["question"], doc.fields["options"], answers(doc)
    )
    assert "Options: There are several options: \nA. " in records[wrong]["request"]
    assert records[stall]["error"].startswith("APITimeoutError")
    assert records[stall]["response"] is None
    note = next(x for x in result.notes if x.startswith("LLM judge"))
    assert f"{n_rot - 1} read from its reply, 1 call(s) failed" in note


def test_choice_judge_reply_read_by_the_rules():
    options = {"A": "cat", "B": "dog"}
    prompt = choice_judge_prompt("What is it", options, "a puppy")
    assert prompt.endswith(
        "Question: What is it?\nOptions: There are several options: \nA. cat\nB. dog\n"
        "\nAnswer: a puppy\nYour output: "
    )
    assert infer_choice("B", options) == "B" and infer_choice("Z", options) == "Z"


# -- MMBench CN: VLMEvalKit's Chinese prompt where the question is Chinese -----------------
# VLMEvalKit's own templates (tests/fixtures/metrics/vlmeval_choice/README.md): the prompt an
# item must get is built here from them, not from the code under test.
REFERENCE_TEMPLATES = json.loads(
    (FIXTURES / "vlmeval_choice" / "vlmeval_judge_prompts.json").read_text("utf-8")
)["templates"]


def _reference_prompt(function: str, doc, prediction: str) -> str:
    options = "".join(f"{k}. {v}\n" for k, v in doc.fields["options"].items())
    return REFERENCE_TEMPLATES[function].format(
        doc.fields["question"], "There are several options: \n" + options, prediction
    )


def _unreadable_cn(doc) -> str:
    return f"很难说 (item {doc.id})"


def _right_letter(docs):
    return lambda prompt: (200, docs[ITEM.findall(prompt)[-1]].fields["answer"])


@pytest.mark.parametrize("task", ["mmbench_dev_cn", "mmbench_v11_dev_cn"])
def test_mmbench_cn_items_get_the_chinese_prompt_and_resume_reuses(
    task, tmp_path, serve, monkeypatch
):
    store = PredictionStore(tmp_path)
    docs = {d.id: d for d in prepare_task(task, builtin_root(), QWEN2_VL.info).docs}
    assert all(infer_choice(_unreadable_cn(d), d.fields["options"]) is None for d in docs.values())
    server = serve(_right_letter(docs))
    judge = _judge(server, monkeypatch)
    result, _, _ = _evaluate(task, _unreadable_cn, store, judge)
    assert result.metrics["circular_acc"] == 100.0 and result.metrics["acc"] == 100.0
    expected = {
        i: _reference_prompt("build_prompt_cn", d, _unreadable_cn(d)) for i, d in docs.items()
    }
    assert sorted(server.prompts) == sorted(expected.values())
    assert expected["0"].startswith("你是一个帮助我匹配答案与单选题中多个选项的 AI 助手。")
    records = {r["id"]: r for r in _records(store, task)}
    assert sorted(records) == sorted(docs)
    for i, r in records.items():
        assert r["request"] == expected[i]
        assert r["prompt"] == "vlmeval-choice-match-cn" and r["prompt_hash"] == JUDGE_CN.hash()
        assert r["key"] == judge_key("judge-model", JUDGE_CN, expected[i])
    note = next(x for x in result.notes if x.startswith("LLM judge"))
    assert f"(prompt vlmeval-choice-match-cn, hash {JUDGE_CN.hash()}, from VLMEvalKit " in note
    assert "build_prompt_cn" in note and "prompt vlmeval-choice-match," not in note

    # Resume: every reply from the file, nothing asked again.
    again, _, runner = _evaluate(task, _unreadable_cn, store, judge)
    assert runner.seen == [] and len(server.prompts) == len(docs)
    assert again.metrics == result.metrics
    assert f"({len(docs)} reused from {task}.judge.jsonl)" in next(
        x for x in again.notes if x.startswith("LLM judge")
    )


def test_a_cn_task_asks_an_english_question_with_the_english_prompt(tmp_path, serve, monkeypatch):
    # VLMEvalKit picks by the question (`cn_string`), not by the dataset: one MMBench-CN
    # question rewritten in English (both its rotations) gets `build_prompt`.
    root = tmp_path / "data"
    shutil.copytree(builtin_root() / "mmbench", root / "mmbench")
    tsv = root / "mmbench" / "MMBench_DEV_CN.tsv"
    lines = tsv.read_text("utf-8").split("\n")
    english = {"0", "1000000"}
    for n, line in enumerate(lines):
        if line.split("\t", 1)[0] in english:
            assert "图中哪个形状是绿色的？" in line
            lines[n] = line.replace("图中哪个形状是绿色的？", "Which shape is green in the image?")
    tsv.write_text("\n".join(lines), "utf-8")

    def evaluate_(judge=None):
        run = prepare_task("mmbench_dev_cn", root, QWEN2_VL.info, judge=judge)
        runner = FakeRunner(lambda r: _unreadable_cn(docs[r.id]))
        (result,) = evaluate([run], runner, store)
        return result, runner

    store = PredictionStore(tmp_path / "run")
    docs = {d.id: d for d in prepare_task("mmbench_dev_cn", root, QWEN2_VL.info).docs}
    assert {i for i, d in docs.items() if d.fields["question"].startswith("Which")} == english
    n_cn = len(docs) - len(english)

    # Without a judge the note names both of the reference's prompts.
    rules, _ = evaluate_()
    (note,) = [x for x in rules.notes if x.startswith("scored by rules only")]
    assert f"the reference ({CHOICE_JUDGE_SOURCE}; {CHOICE_JUDGE_SOURCE_CN}) asks" in note

    server = serve(_right_letter(docs))
    judge = _judge(server, monkeypatch)
    result, _ = evaluate_(judge)
    assert result.metrics["circular_acc"] == 100.0
    records = {r["id"]: r for r in _records(store, "mmbench_dev_cn")}
    assert sorted(records) == sorted(docs)
    for i, doc in docs.items():
        function, prompt = (
            ("build_prompt", JUDGE_EN) if i in english else ("build_prompt_cn", JUDGE_CN)
        )
        want = _reference_prompt(function, doc, _unreadable_cn(doc))
        assert records[i]["request"] == want
        assert records[i]["prompt"] == prompt.name and records[i]["prompt_hash"] == prompt.hash()
        assert records[i]["key"] == judge_key("judge-model", prompt, want)
    assert records["0"]["request"].startswith("You are an AI assistant who will help me")
    assert sorted(server.prompts) == sorted(r["request"] for r in records.values())
    note = next(x for x in result.notes if x.startswith("LLM judge"))
    assert (
        f"(prompt vlmeval-choice-match, hash {JUDGE_EN.hash()}, from {CHOICE_JUDGE_SOURCE}: "
        f"{len(english)} item(s); prompt vlmeval-choice-match-cn, hash {JUDGE_CN.hash()}, "
        f"from {CHOICE_JUDGE_SOURCE_CN}: {n_cn} item(s)): {len(docs)} item(s) the rules"
    ) in note

    # Resume and rescore: each reply found under the prompt it was asked with; no call.
    again, runner = evaluate_(judge)
    assert runner.seen == [] and len(server.prompts) == len(docs)
    assert again.metrics == result.metrics
    assert f"({len(docs)} reused from" in next(x for x in again.notes if x.startswith("LLM"))
    run = prepare_task("mmbench_dev_cn", root, QWEN2_VL.info, judge=judge)
    assert rescore_task(run, store, QWEN2_VL.info).metrics == result.metrics
    assert len(server.prompts) == len(docs)


def test_a_reply_is_reused_only_under_the_same_prompt():
    assert judge_key("m", JUDGE_EN, "x") != judge_key("m", JUDGE_CN, "x")
    assert JUDGE_EN.hash() != JUDGE_CN.hash() and JUDGE_EN.name != JUDGE_CN.name


# -- no flags: nothing is sent -------------------------------------------------------------
def test_without_judge_flags_nothing_is_sent(tmp_path, monkeypatch):
    def no_network(self, address):
        raise AssertionError(f"network use without a judge: {address}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    store = PredictionStore(tmp_path)
    result, docs, _ = _evaluate("mmstar", lambda d: "no idea at all", store)
    assert result.metrics["acc"] == 0.0
    assert not store.judge_file("mmstar").exists()
    (note,) = [x for x in result.notes if "scored by rules only" in x]
    assert f"{len(docs)} such item(s) count wrong here" in note
    assert "VLMEvalKit" in note


def test_judge_key_depends_on_model_prompt_and_text():
    from qwenvl_eval.tasks.qwen2vl_mathvista import MathVistaTestmini

    p = MathVistaTestmini.judge_prompt
    assert judge_key("m", p, "x") == judge_key("m", p, "x")
    assert judge_key("m", p, "x") != judge_key("m2", p, "x") != judge_key("m", p, "y")


# -- the flags -----------------------------------------------------------------------------
def test_unset_judge_key_variable_is_one_line_before_the_model_loads(capsys, monkeypatch):
    from qwenvl_eval import app

    def refuse(*a, **k):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(app, "load_runner", refuse)
    monkeypatch.delenv("QWENVL_TEST_UNSET_KEY", raising=False)
    base = ["run", "--model", "tiny-qwen2-vl", "--tasks", "mathvista", "--data-dir", "builtin"]
    code, _, err = run_cli(
        [*base, "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-model", "m",
         "--judge-api-key-env", "QWENVL_TEST_UNSET_KEY"],
        capsys,
    )  # fmt: skip
    assert code == 2 and "Traceback" not in err
    text = " ".join(err.split())
    assert text == (
        "error: --judge-api-key-env QWENVL_TEST_UNSET_KEY: the variable is not set (or "
        "empty); export the judge's API key in it"
    )
    code, _, err = run_cli([*base, "--judge-model", "m"], capsys)
    assert code == 2 and " ".join(err.split()) == (
        "error: --judge-model/--judge-api-key-env need --judge-base-url"
    )
    code, _, err = run_cli([*base, "--judge-base-url", "ftp://x", "--judge-model", "m"], capsys)
    assert code == 2 and "--judge-base-url: expected http(s)://host[:port]/v1" in err


def test_a_judge_refusing_the_key_stops_with_one_line(tmp_path, serve, monkeypatch):
    from qwenvl_eval.judge import JudgeUnavailable

    server = serve(lambda prompt: (401, "invalid key"))
    store = PredictionStore(tmp_path)
    with pytest.raises(JudgeUnavailable) as err:
        _evaluate("mmstar", lambda d: "no idea at all", store, _judge(server, monkeypatch))
    message = str(err.value)
    assert message.startswith(f"--judge-base-url {server.url}: AuthenticationError 401: ")
    assert KEY not in message and "[API key redacted]" in message
    assert len(server.prompts) == 1  # not retried: a refused key is refused every time
    run = prepare_task("mmstar", builtin_root(), QWEN2_VL.info)
    assert sorted(store.load("mmstar")) == sorted(d.id for d in run.docs)  # answers kept


# -- through app.run and app.rescore (the flags' path, results.json) -----------------------
def test_run_and_rescore_record_the_judge(tmp_path, serve, monkeypatch):
    from qwenvl_eval import app
    from qwenvl_eval.config import RunConfig

    run = prepare_task("mmstar", builtin_root(), QWEN2_VL.info)
    right = {d.id: d.fields["answer"] for d in run.docs}
    server = serve(lambda prompt: (200, right[ITEM.findall(prompt)[-1]]))
    model_dir = tmp_path / "My-Qwen2-VL"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    monkeypatch.setattr(
        app, "load_runner",
        lambda model, options: FakeRunner(lambda r: f"no idea (item {r.id})", model.family),
    )  # fmt: skip
    monkeypatch.setenv("QWENVL_TEST_JUDGE_KEY", KEY)
    options = JudgeOptions(server.url, "judge-model", "QWENVL_TEST_JUDGE_KEY")
    config = RunConfig(
        model=str(model_dir), tasks=["mmstar"], data_dir="builtin",
        output_dir=tmp_path / "out", judge=options,
    )  # fmt: skip
    outcome = app.run(config)
    results = json.loads(outcome.results_json.read_text())
    assert results["tasks"]["mmstar"]["metrics"]["acc"] == 100.0
    assert results["config"]["judge"] == {
        "base_url": server.url, "model": "judge-model", "api_key_env": "QWENVL_TEST_JUDGE_KEY",
        "request_timeout": 600.0, "max_retries": 5,
    }  # fmt: skip
    assert KEY not in outcome.results_json.read_text()
    assert len(server.prompts) == len(right)
    assert not runs_table([load_run(outcome.run_dir)]).marks
    assert (outcome.run_dir / "mmstar.judge.jsonl").is_file()

    plain = app.rescore(outcome.run_dir)  # no judge: the rules alone, nothing sent
    assert plain.results["tasks"]["mmstar"]["metrics"]["acc"] == 0.0
    assert "judge" not in plain.results["config"]
    assert any(
        n.startswith("scored by rules only") for n in plain.results["tasks"]["mmstar"]["notes"]
    )
    table = runs_table([load_run(outcome.run_dir)])  # the rules-only cell is footnoted
    (key,) = table.marks[(0, "mmstar")]
    assert table.notes[key].startswith("mmstar: scored by rules only: the reference (VLMEvalKit")
    again = app.rescore(outcome.run_dir, judge_options=options)  # the saved replies, no call
    assert again.results["tasks"]["mmstar"]["metrics"]["acc"] == 100.0
    assert len(server.prompts) == len(right)
    assert not runs_table([load_run(outcome.run_dir)]).marks


def test_a_torn_or_failed_judge_line_is_asked_again(tmp_path):
    store = PredictionStore(tmp_path)
    good = {"key": "k1", "response": "B", "error": None, "id": "1"}
    store.append_judged("mmstar", good)
    store.append_judged("mmstar", {"key": "k2", "response": None, "error": "500", "id": "2"})
    with store.judge_file("mmstar").open("a") as f:
        f.write('{"key": "k3", "resp')  # killed mid-write
    assert store.load_judged("mmstar") == {"k1": good}
    later = {"key": "k4", "response": "C", "error": None, "id": "4"}
    store.append_judged("mmstar", later)  # on a line of its own after the torn one
    assert store.load_judged("mmstar") == {"k1": good, "k4": later}
