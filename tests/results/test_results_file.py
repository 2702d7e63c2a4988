"""results.json built from its typed form, written, and read back through the one reader."""

import json

from qwenvl_eval.results.results_file import (
    SCHEMA_VERSION,
    ModelRecord,
    ResultsFile,
    read_results_file,
    write_results,
)
from qwenvl_eval.types import TaskResult


def test_written_results_read_back_valid(tmp_path):
    model = ModelRecord(
        spec="org/m",
        path="/ckpt/m",
        revision=None,
        preset=None,
        family="qwen2-vl",
        weights_id="ab" * 8,
        engine={"backend": "hf-transformers", "dtype": "bfloat16", "device": "cpu"},
    )
    task = TaskResult(
        task="toy",
        metrics={"exact": 50.0},
        counts={"items": 2, "errors": 0, "resumed": 0},
        prompt_hash="0" * 16,
        generation={"max_new_tokens": 8},
        headline="exact",
    )
    results = ResultsFile(
        config={"model": "org/m", "seed": 7},
        model=model.to_json(),
        environment={"harness_version": "x", "harness_commit": None},
        throughput={"items": 2},
        tasks=[task],
        created="2026-01-01T00:00:00+00:00",
    ).to_json()
    # The engine's provenance follows the fixed fields, as the run always wrote it.
    assert list(results["model"]) == [
        *("spec", "path", "revision", "preset", "family", "weights_id"),
        *("backend", "dtype", "device"),
    ]
    assert list(results) == [
        *("schema_version", "created", "config", "model", "environment", "seeds"),
        *("throughput", "tasks"),
    ]
    assert results["schema_version"] == SCHEMA_VERSION and results["seeds"] == {"seed": 7}
    json_path, md_path = write_results(tmp_path, results)
    assert json_path == tmp_path / "results.json" and md_path.name == "results.md"
    assert json.loads(json_path.read_text())["tasks"]["toy"]["metrics"] == {"exact": 50.0}
    read = read_results_file(json_path)
    assert read["tasks"]["toy"]["prompt_hash"] == "0" * 16
    assert "metric_meanings" in read["tasks"]["toy"]  # upgraded in memory when absent


def test_the_schema_declares_every_field_the_typed_form_writes():
    from dataclasses import fields

    from qwenvl_eval.results.results_file import results_schema

    schema = results_schema()
    written = ResultsFile(config={}, model={}, environment={}, throughput={}, tasks=[]).to_json()
    assert set(written) == set(schema["properties"])
    task_fields = {f.name for f in fields(TaskResult)}
    assert task_fields <= set(schema["$defs"]["task"]["properties"])
    assert set(schema["$defs"]["task"]["required"]) <= task_fields
