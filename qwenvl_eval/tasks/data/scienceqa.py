"""ScienceQA: the official `problems.json` + `pid_splits.json`, or an lmms-lab parquet folder.

Formats read
- Official (github.com/lupantech/ScienceQA, `data/scienceqa/`): `scienceqa/problems.json`
  `{pid: {"question", "choices", "answer" (index), "hint", "image" ("image.png" or null),
  "subject", "grade", ...}}`, `scienceqa/pid_splits.json` `{"train": [pid, ...], "test": ...}`
  (the split's order is the evaluation order); images `scienceqa/images/{split}/{pid}/{image}`
  as the official zips unpack, or `scienceqa/images/{pid}/{image}`.
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
from pathlib import Path
from typing import Any

from ...errors import DataError
from ...types import Document, ImageRef
from . import records as rec
from .hf_parquet import image_from_cell, parquet_files, read_parquet_split
from .locate import find_image, read_json

LETTERS = string.ascii_uppercase
_HF_SPLITS = {"val": "validation", "test": "test", "train": "train"}
_HF_IMG, _HF_FULL = "ScienceQA-IMG", "ScienceQA-FULL"


def option_lines(choices: list[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


@dataclass(frozen=True)
class ScienceQAData:
    split: str = "test"
    image_only: bool = False  # ScienceQA-IMG: only the questions with an image
    subdir: str = "scienceqa"

    @property
    def split_size(self) -> int | None:
        sizes = {("test", True): 2017, ("test", False): 4241}
        return sizes.get((self.split, self.image_only))

    def _official(self, folder: Path) -> list[Path]:
        return [folder / "problems.json", folder / "pid_splits.json"]

    def _parquet(self, folder: Path) -> Path | None:
        if (folder / "problems.json").is_file():
            return None
        split = _HF_SPLITS.get(self.split, self.split)
        configs = (_HF_IMG, _HF_FULL) if self.image_only else (_HF_FULL,)
        return next((folder / c for c in configs if parquet_files(folder / c, split)), None)

    def expected(self, root: Path) -> list[Path]:
        folder = root / self.subdir
        parquet = self._parquet(folder)
        if parquet is not None:
            return parquet_files(parquet, _HF_SPLITS.get(self.split, self.split))
        return self._official(folder)

    def load(self, root: Path) -> list[Document]:
        folder = root / self.subdir
        parquet = self._parquet(folder)
        if parquet is not None:
            return self._from_parquet(parquet)
        problems_path, splits_path = self._official(folder)
        problems = read_json(problems_path)
        splits = read_json(splits_path)
        if not isinstance(problems, dict):
            raise DataError(problems_path, "expected an object keyed by problem id")
        pids = splits.get(self.split) if isinstance(splits, dict) else None
        if not isinstance(pids, list):
            raise DataError(
                splits_path,
                f"expected a list of problem ids for split {self.split!r}",
                field=self.split,
            )
        docs = []
        for pid in map(str, pids):
            if pid not in problems:
                raise DataError(
                    problems_path, f"problem listed in {splits_path.name} is missing", item=pid
                )
            row = rec.record(problems[pid], source=problems_path, item=pid)
            has_image = bool(row.get("image"))
            if self.image_only and not has_image:
                continue
            image = None
            if has_image:
                name = rec.text(row, "image", source=problems_path, item=pid)
                image = self._image(folder, pid, name, problems_path)
            docs.append(_doc(pid, row, image, problems_path))
        return docs

    def _image(self, folder: Path, pid: str, name: str, source: Path) -> ImageRef:
        official = f"images/{self.split}/{pid}"
        base = official if (folder / official).is_dir() else f"images/{pid}"
        if not (folder / base).is_dir():
            base = official  # reported missing under the official layout
        rel = posixpath.join(base, name)
        return find_image(folder, rel, source=source, item=pid, field="image")

    def _from_parquet(self, folder: Path) -> list[Document]:
        docs = []
        for n, row in enumerate(read_parquet_split(folder, _HF_SPLITS.get(self.split, self.split))):
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
