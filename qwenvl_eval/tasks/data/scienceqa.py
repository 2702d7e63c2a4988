"""ScienceQA: the official `problems.json` + `pid_splits.json`, or an lmms-lab parquet folder.

Formats read
- Official (github.com/lupantech/ScienceQA, `data/scienceqa/`): `scienceqa/problems.json`
  `{pid: {"question", "choices", "answer" (index), "hint", "image" ("image.png" or null),
  "subject", "grade", ...}}`, `scienceqa/pid_splits.json` `{"train": [pid, ...], "test": ...}`
  (the split's order is the evaluation order); images `scienceqa/images/{split}/{pid}/{image}`
  as the official zips unpack, or `scienceqa/images/{pid}/{image}`.
- Qwen-VL eval_mm's `scienceqa/scienceqa_test_img.jsonl` (the image questions of the test
  split, the file its script reads), with `problems.json` beside it for the categories.
- `problems.json` alone, as Qwen-VL's EVALUATION.md leaves it (no `pid_splits.json`): every
  problem carries its own `split`; the file's order is the evaluation order.
- lmms-lab/ScienceQA-IMG (a repository of its own: `scienceqa/data/test-*.parquet`), for the
  image-only tasks.
- lmms-lab/ScienceQA: config `ScienceQA-IMG` (questions with an image) at
  `scienceqa/ScienceQA-IMG/{split}-*.parquet`, config `ScienceQA-FULL` (all questions) at
  `scienceqa/ScienceQA-FULL/...`; columns `image` (null without one), `question`, `choices`,
  `answer`, `hint`, `subject`, `grade`, ... The rows carry no pid: id = row number.

Documents: id = pid; fields `question`, `choices`, `answer` (index), `hint`, `subject`,
`grade`, `has_image`, and the prompt's pieces `context` (hint or "N/A") and `options`
("A. c0\\nB. c1...", one line per choice, as Qwen-VL's evaluate_multiple_choice.py writes them).
"""

from __future__ import annotations

import posixpath
import string
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ...errors import DataError
from ...types import Document, ImageRef
from . import records as rec
from .formats import Format, SplitSource
from .hf_parquet import hf_formats, image_from_cell
from .locate import ImageCache, read_json, read_jsonl, strip_data_prefix

LETTERS = string.ascii_uppercase
EVAL_MM_JSONL = "scienceqa_test_img.jsonl"  # Qwen-VL eval_mm's converted test-image split
_HF_SPLITS = {"val": "validation", "test": "test", "train": "train"}
_HF_IMG, _HF_FULL = "ScienceQA-IMG", "ScienceQA-FULL"


def option_lines(choices: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


@dataclass(frozen=True)
class ScienceQAData(SplitSource):
    split: str = "test"
    image_only: bool = False  # ScienceQA-IMG: only the questions with an image
    subdir: str = "scienceqa"

    @property
    def split_size(self) -> int | None:
        sizes = {("test", True): 2017, ("test", False): 4241}
        return sizes.get((self.split, self.image_only))

    def formats(self, root: Path) -> list[Format]:
        folder = root / self.subdir
        problems, splits = folder / "problems.json", folder / "pid_splits.json"
        hf_split = _HF_SPLITS.get(self.split, self.split)
        out = [
            Format(
                "official",
                "official",
                (problems, splits),
                lambda: self._read(folder, root, problems, splits),
            ),
        ]
        if self.image_only and self.split == "test":
            # eval_mm's own file of the 2017 image questions, in its order; problems.json
            # beside it (EVALUATION.md downloads both) adds the subject and grade categories.
            jsonl = folder / EVAL_MM_JSONL
            out += [
                Format(
                    "eval_mm jsonl + problems.json",
                    "eval_mm",
                    (jsonl, problems),
                    lambda: self._read_jsonl(root, jsonl, problems),
                ),
                Format("eval_mm jsonl", "eval_mm", (jsonl,), lambda: self._read_jsonl(root, jsonl)),
            ]
        out.append(
            Format(
                "problems.json (split per problem)",
                "eval_mm",
                (problems,),
                lambda: self._read(folder, root, problems, None),
            )
        )
        configs = (_HF_IMG, _HF_FULL) if self.image_only else (_HF_FULL,)
        for c in configs:
            out += hf_formats(folder / c, hf_split, self._from_rows)
        if self.image_only:  # lmms-lab/ScienceQA-IMG, a repository of its own
            out += hf_formats(folder, hf_split, self._from_rows, hub_id="lmms-lab/ScienceQA-IMG")
        return out

    def _pids(self, problems: dict, problems_path: Path, splits_path: Path | None) -> list[str]:
        if splits_path is None:
            return [
                str(pid)
                for pid, row in problems.items()
                if isinstance(row, dict) and row.get("split") == self.split
            ]
        splits = read_json(splits_path)
        pids = splits.get(self.split) if isinstance(splits, dict) else None
        if not isinstance(pids, list):
            raise DataError(
                splits_path,
                f"expected a list of problem ids for split {self.split!r}",
                field=self.split,
            )
        return [str(p) for p in pids]

    def _read(
        self, folder: Path, root: Path, problems_path: Path, splits_path: Path | None
    ) -> list[Document]:
        problems = read_json(problems_path)
        if not isinstance(problems, dict):
            raise DataError(problems_path, "expected an object keyed by problem id")
        images = ImageCache(folder, root=root)
        docs = []
        seen: set[str] = set()
        for pid in self._pids(problems, problems_path, splits_path):
            if pid not in problems:
                raise DataError(
                    problems_path, f"problem listed in {splits_path.name} is missing", item=pid
                )
            if pid in seen:
                raise DataError(splits_path or problems_path, "duplicate problem id", item=pid)
            seen.add(pid)
            row = rec.record(problems[pid], source=problems_path, item=pid)
            has_image = bool(row.get("image"))
            if self.image_only and not has_image:
                continue
            image = None
            if has_image:
                name = rec.text(row, "image", source=problems_path, item=pid)
                image = self._image(folder, pid, name, problems_path, images)
            docs.append(_doc(pid, row, image, problems_path))
        return docs

    def _read_jsonl(self, root: Path, path: Path, problems: Path | None = None) -> list[Document]:
        """eval_mm's `scienceqa_test_img.jsonl`: lines `{image, question, choices, answer,
        hint}` with `image` from the folder holding `data/`
        (`data/scienceqa/images/test/<pid>/image.png`). The id is the pid of the image's
        folder (the line number when the path has none); the subject and grade come from
        problems.json when it is given (else they are unknown: no category breakdown)."""
        known: dict[str, Any] = {}
        if problems is not None:
            blob = read_json(problems)
            if not isinstance(blob, dict):
                raise DataError(problems, "expected an object keyed by problem id")
            known = blob
        images = ImageCache(path.parent, root=root, bases=(root, path.parent))
        docs: list[Document] = []
        for n, raw in enumerate(read_jsonl(path), 1):
            row = rec.record(raw, source=path, item=f"line {n}")
            rel = strip_data_prefix(rec.text(row, "image", source=path, item=f"line {n}"))
            parent = PurePosixPath(rel).parent.name
            pid = parent if parent.isdigit() else str(n)
            image = images.get(rel, source=path, item=pid, field="image")
            problem = known.get(pid) if isinstance(known.get(pid), dict) else {}
            cats = {k: v for k in ("subject", "grade") if isinstance(v := problem.get(k), str)}
            docs.append(_doc(pid, {"subject": "", "grade": ""} | cats | row, image, path))
        return rec.check_unique(docs, path)

    def _image(
        self, folder: Path, pid: str, name: str, source: Path, images: ImageCache
    ) -> ImageRef:
        official = f"images/{self.split}/{pid}"
        base = official if (folder / official).is_dir() else f"images/{pid}"
        if not (folder / base).is_dir():
            base = official  # reported missing under the official layout
        rel = posixpath.join(base, name)
        return images.get(rel, source=source, item=pid, field="image")

    def _from_rows(self, rows: list[dict[str, Any]], folder: Path) -> list[Document]:
        docs = []
        for n, row in enumerate(rows):
            item = str(n)
            cell = row.get("image")
            if cell is None and self.image_only:
                continue
            image = (
                None
                if cell is None
                else image_from_cell(cell, source=folder, item=item, field="image")
            )
            docs.append(_doc(item, row, image, folder))
        return docs


def _doc(item: str, row: dict[str, Any], image: ImageRef | None, source: Path) -> Document:
    choices = rec.texts(row, "choices", source=source, item=item)
    if len(choices) > len(LETTERS):
        raise DataError(
            source,
            f"{len(choices)} choices, at most {len(LETTERS)} supported",
            item=item,
            field="choices",
        )
    answer = row.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, int) or not (0 <= answer < len(choices)):
        raise DataError(
            source,
            f"expected a choice index below {len(choices)}, got {answer!r}",
            item=item,
            field="answer",
        )
    hint = rec.optional_text(row, "hint", source=source, item=item)
    return Document(
        id=item,
        images=() if image is None else (image,),
        fields={
            "question": rec.text(row, "question", source=source, item=item),
            "choices": choices,
            "answer": answer,
            "hint": hint,
            "subject": rec.text(row, "subject", source=source, item=item),
            "grade": rec.text(row, "grade", source=source, item=item),
            "has_image": image is not None,
            "context": hint if hint else "N/A",
            "options": option_lines(choices),
        },
    )
