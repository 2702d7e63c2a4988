"""VLMEvalKit TSV reader, on files written the way VLMEvalKit writes them (pandas to_csv)."""

from __future__ import annotations

import base64
import io

import pandas as pd
import pytest
from PIL import Image

from qwenvl_eval.errors import DataError
from qwenvl_eval.metrics.mmbench import Rotation, circular_hit
from qwenvl_eval.tasks.data.vlmeval_tsv import (
    VLMEVAL_MD5,
    check_md5,
    circular_groups,
    file_md5,
    image_bytes,
    read_vlmeval_tsv,
)


def _png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), color).save(buffer, format="PNG")
    return buffer.getvalue()


RED = base64.b64encode(_png("red")).decode()
BLUE = base64.b64encode(_png("blue")).decode()


def _write(tmp_path, rows: list[dict], name: str = "data.tsv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def _mmbench_rows() -> list[dict]:
    # MMBench_DEV_EN's schema: a question and its rotations (index + k * 1e6); the
    # rotations' image cell names the first row's index instead of repeating the image.
    base = {
        "question": "What animal is shown?\nPick one.",
        "hint": None,
        "category": "image_scene",
        "l2-category": "coarse_perception",
        "split": "dev",
    }
    opts = ["cat", "dog", "None", "fox"]
    rows = []
    for k in range(4):
        rotated = opts[k:] + opts[:k]
        rows.append(
            {
                "index": 12 + k * 1_000_000,
                **base,
                "image": RED if k == 0 else "12",
                **dict(zip("ABCD", rotated, strict=True)),
                "answer": "ABCD"[(1 - k) % 4],
            }
        )
    rows.append(
        {
            "index": 7,
            "question": "哪一个是红色？",
            "hint": "看图",
            "image": BLUE,
            "A": "红",
            "B": "蓝",
            "C": None,
            "D": None,
            "answer": "B",
            "category": "color",
            "l2-category": "attribute_reasoning",
            "split": "dev",
        }
    )
    return rows


def test_reads_mmbench_schema_with_shared_images_and_missing_options(tmp_path) -> None:
    records = read_vlmeval_tsv(_write(tmp_path, _mmbench_rows()))
    assert [r.index for r in records] == ["12", "1000012", "2000012", "3000012", "7"]
    first = records[0]
    assert first.question == "What animal is shown?\nPick one."
    assert first.hint is None
    # "None" is a missing cell for pandas, hence no option C in VLMEvalKit either
    assert first.options == {"A": "cat", "B": "dog", "D": "fox"}
    assert first.answer == "B"
    assert first.fields == {
        "category": "image_scene",
        "l2-category": "coarse_perception",
        "split": "dev",
    }
    assert all(r.images == (RED,) for r in records[:4])
    assert image_bytes(records[1]) == [_png("red")]
    cn = records[4]
    assert (cn.question, cn.hint, cn.options) == ("哪一个是红色？", "看图", {"A": "红", "B": "蓝"})
    assert image_bytes(cn) == [_png("blue")]


def test_circular_groups_feed_circular_eval(tmp_path) -> None:
    records = read_vlmeval_tsv(_write(tmp_path, _mmbench_rows()))
    groups = circular_groups(records)
    assert sorted(groups) == [7, 12]
    assert [r.index for r in groups[12]] == ["12", "1000012", "2000012", "3000012"]
    right = [Rotation(r.answer, r.options, r.answer) for r in groups[12]]
    assert circular_hit(right)
    one_wrong = right[:3] + [Rotation("A", groups[12][3].options, groups[12][3].answer)]
    assert not circular_hit(one_wrong)


def test_multi_image_list_cell_and_numbers_kept_as_written(tmp_path) -> None:
    rows = [
        {
            "index": "mmmu_1",
            "question": "Compare <image 1> and <image 2>",
            "image": repr([RED, BLUE]),
            "image_path": repr(["a.png", "b.png"]),
            "answer": "2.50",
            "A": None,
        }
    ]
    (record,) = read_vlmeval_tsv(_write(tmp_path, rows))
    assert record.images == (RED, BLUE)
    assert record.image_paths == ("a.png", "b.png")
    assert record.answer == "2.50"
    assert record.options == {}
    assert image_bytes(record) == [_png("red"), _png("blue")]


def test_row_without_image_is_kept(tmp_path) -> None:
    (record,) = read_vlmeval_tsv(
        _write(tmp_path, [{"index": 1, "question": "q", "image": None, "answer": "x"}])
    )
    assert record.images == ()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"index": 1, "image": RED}], "no 'question' column"),
        ([{"index": 1, "question": None}], "item 1, field 'question': empty question"),
        ([{"index": 1, "question": "q"}, {"index": 1, "question": "r"}], "index repeated"),
        ([{"index": 2, "question": "q", "image": "99"}], "item 2, field 'image': image refers"),
        (
            [{"index": 3, "question": "q", "image": "[" + "'x', " * 20 + "(2]"}],
            "field 'image': not a valid list",
        ),
        (
            [{"index": 4, "question": "q", "image": f"[__import__('os').getcwd(), '{RED}']"}],
            "not a valid list",
        ),
    ],
)
def test_bad_files_name_file_item_and_field(tmp_path, rows, message) -> None:
    path = _write(tmp_path, rows)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("[", r"\[")) as err:
        read_vlmeval_tsv(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_base64_and_missing_file(tmp_path) -> None:
    (record,) = read_vlmeval_tsv(
        _write(tmp_path, [{"index": 5, "question": "q", "image": "!" * 80}])
    )
    with pytest.raises(DataError, match="item 5, field 'image': image is not valid base64"):
        image_bytes(record, tmp_path / "data.tsv")
    with pytest.raises(DataError, match="file not found"):
        read_vlmeval_tsv(tmp_path / "absent.tsv")


def test_md5_check(tmp_path, monkeypatch) -> None:
    path = _write(tmp_path, _mmbench_rows())
    digest = file_md5(path)
    monkeypatch.setitem(VLMEVAL_MD5, "Mini", digest)
    check_md5(path, "Mini")
    check_md5(path, "NotListed")
    with pytest.raises(DataError, match="is not VLMEvalKit's"):
        check_md5(path, "MMBench_DEV_EN")
    assert len(VLMEVAL_MD5["MMStar"]) == 32
