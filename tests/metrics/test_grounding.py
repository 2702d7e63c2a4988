"""Box parsing per family, IoU and the grounding aggregate."""

from __future__ import annotations

import math
import random

import pytest

from qwenvl_eval.metrics import (
    PAPER_NO_MATCH_BOX,
    box_iou,
    coco_xywh_to_xyxy,
    eval_mm_box,
    eval_mm_iou,
    grounding_scores,
    input_size_from_grid,
    parse_box,
    parse_qwen_vl_coords,
)

# (text, family, image_size, input_size, expected box or None, why)
PARSE_CASES = [
    # qwen-vl: first "(a,b),(c,d)", / 999 * size
    ("<ref>dog</ref><box>(0,0),(999,999)</box>", "qwen-vl", (640, 480), None,
     (0.0, 0.0, 640.0, 480.0), "999 maps to the full width/height"),
    ("<box>(100,200),(300,400)</box>", "qwen-vl", (999, 1998), None,
     (100.0, 400.0, 300.0, 800.0), "divide by 999, times width/height"),
    ("(100,200), (300,400)", "qwen-vl", (640, 480), None, None,
     "a space between the points does not match the paper's pattern"),
    ("(100, 200),(300, 400)", "qwen-vl", (999, 999), None,
     (100.0, 200.0, 300.0, 400.0), "a space inside a point is fine (float(' 200'))"),
    ("(1,2),(3,4) then (5,6),(7,8)", "qwen-vl", (999, 999), None,
     (1.0, 2.0, 3.0, 4.0), "first match"),
    ("(1,2) x (3,4),(5,6)", "qwen-vl", (999, 999), None, None,
     "non-greedy group spans '1,2) x (3,4': three values, like the script's except"),
    ("(a,b),(c,d)", "qwen-vl", (640, 480), None, None, "not numbers"),
    ("(1,2,3),(4,5)", "qwen-vl", (640, 480), None, None, "three values in a point"),
    ("no box here", "qwen-vl", (640, 480), None, None, "no match"),
    ("(nan,0),(1,1)", "qwen-vl", (640, 480), None, None, "non-finite coordinate"),
    # qwen2-vl: [0, 1000) / 1000, tags optional, whitespace tolerated
    ("<|object_ref_start|>dog<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>",
     "qwen2-vl", (1000, 500), None, (100.0, 100.0, 300.0, 200.0), "divide by 1000"),
    ("(0,0),(999,999)", "qwen2-vl", (1000, 1000), None, (0.0, 0.0, 999.0, 999.0),
     "999 is the last bin, not the full size"),
    ("dog (100, 200), (300, 400)", "qwen2-vl", (1000, 1000), None,
     (100.0, 200.0, 300.0, 400.0), "bare pair, spaces allowed"),
    ("<|box_start|>(1,2)<|box_end|>", "qwen2-vl", (1000, 1000), None, None, "one point"),
    # qwen2.5-vl: absolute pixels of the resized input
    ('```json\n[{"bbox_2d": [28, 56, 280, 140], "label": "dog"}]\n```', "qwen2.5-vl",
     (1000, 800), (560, 448), (50.0, 100.0, 500.0, 250.0), "map back x*1000/560, y*800/448"),
    ("[28, 56, 280, 140]", "qwen2.5-vl", (1000, 800), (560, 448),
     (50.0, 100.0, 500.0, 250.0), "bare list of four numbers"),
    ('[{"bbox_2d": [28, 56, 280, 140], "label": "a tru', "qwen2.5-vl", (1000, 800),
     (560, 448), (50.0, 100.0, 500.0, 250.0), "truncated JSON"),
    ('see [1, 2, 3, 4] and {"bbox_2d": [28, 56, 280, 140]}', "qwen2.5-vl", (560, 448),
     (560, 448), (28.0, 56.0, 280.0, 140.0), "a bbox_2d list wins over an earlier bare list"),
    ('[{"bbox_2d": [28.5, 56, 280, 140]}]', "qwen2.5-vl", (560, 448), (560, 448),
     (28.5, 56.0, 280.0, 140.0), "decimals"),
    ("[28, 56, 280, 140]", "qwen2.5-vl", (1000, 800), None, None,
     "no input size: no box rather than a box in the wrong frame"),
    ("[28, 56, 280]", "qwen2.5-vl", (1000, 800), (560, 448), None, "three numbers"),
    ("(28,56),(280,140)", "qwen2.5-vl", (1000, 800), (560, 448), None, "not its format"),
    # qwen3-vl: relative 0..1000 in the JSON format
    ('[{"bbox_2d": [100, 200, 500, 1000], "label": "x"}]', "qwen3-vl", (640, 480), None,
     (64.0, 96.0, 320.0, 480.0), "divide by 1000"),
    ("```json\n[\n  {\"bbox_2d\": [0, 0, 1000, 1000]}\n]\n```", "qwen3-vl", (640, 480),
     (320, 240), (0.0, 0.0, 640.0, 480.0), "input size is irrelevant for relative boxes"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "family", "size", "input_size", "expected", "why"), PARSE_CASES)
def test_parse_box(text, family, size, input_size, expected, why) -> None:
    got = parse_box(text, family, size, input_size)
    if expected is None:
        assert got is None, why
    else:
        assert got == pytest.approx(expected, abs=1e-9), why


def test_qwen_vl_scaling_is_999_not_1000() -> None:
    box = parse_box("(500,500),(999,999)", "qwen-vl", (1000, 1000))
    assert box == pytest.approx((500 / 999 * 1000, 500 / 999 * 1000, 1000.0, 1000.0))


@pytest.mark.parametrize(
    ("text", "family", "size", "input_size"),
    [
        (None, "qwen-vl", (640, 480), None),
        (123, "qwen2-vl", (640, 480), None),
        ("(1,2),(3,4)", "qwen-vl", None, None),
        ("(1,2),(3,4)", "qwen-vl", (0, 480), None),
        ("(1,2),(3,4)", "qwen-vl", (float("nan"), 480), None),
        ("(1,2),(3,4)", "qwen-vl", "640x480", None),
        ("[1, 2, 3, 4]", "qwen2.5-vl", (640, 480), (0, 0)),
        ("[1, 2, 3, 4]", "qwen2.5-vl", (640, 480), "bad"),
    ],
)
def test_parse_box_bad_input_is_none(text, family, size, input_size) -> None:
    assert parse_box(text, family, size, input_size) is None


def test_unknown_family_raises() -> None:
    with pytest.raises(ValueError):
        parse_box("(1,2),(3,4)", "qwen4-vl", (640, 480))


IOU_CASES = [
    ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175, "partial overlap"),
    ((0, 0, 10, 10), (0, 0, 10, 10), 1.0, "identical"),
    ((0, 0, 1, 1), (0, 0, 1, 2), 0.5, "continuous coordinates, no +1"),
    ((0, 0, 10, 10), (10, 0, 20, 10), 0.0, "touching edges"),
    ((0, 0, 10, 10), (20, 20, 30, 30), 0.0, "disjoint"),
    ((0, 0, 10, 10), (2, 2, 4, 4), 0.04, "contained"),
    ((10, 0, 0, 10), (0, 0, 10, 10), 0.0, "inverted x"),
    ((0, 10, 10, 0), (0, 10, 10, 0), 0.0, "inverted boxes are 0 even when equal"),
    ((5, 5, 5, 5), (5, 5, 5, 5), 0.0, "two zero-area boxes: empty union"),
    ((0, 0, 0, 10), (0, 0, 10, 10), 0.0, "zero-area box"),
    (PAPER_NO_MATCH_BOX, (0, 0, 10, 10), 0.0, "the paper's no-match box"),
    ((math.nan, 0, 1, 1), (0, 0, 1, 1), 0.0, "NaN"),
    ((0, 0, math.inf, 1), (0, 0, 1, 1), 0.0, "inf"),
    (None, (0, 0, 1, 1), 0.0, "no box (parse failure)"),
    ((0, 0, 1), (0, 0, 1, 1), 0.0, "three numbers"),
    ("0,0,1,1", (0, 0, 1, 1), 0.0, "a string"),
    ([0, 0, 10, 10], (5.0, 5.0, 15.0, 15.0), 25 / 175, "lists work too"),
]


@pytest.mark.parametrize(("a", "b", "expected", "why"), IOU_CASES)
def test_box_iou(a, b, expected, why) -> None:
    assert box_iou(a, b) == pytest.approx(expected, abs=1e-12), why
    assert box_iou(b, a) == pytest.approx(expected, abs=1e-12), why


def test_box_iou_numpy() -> None:
    np = pytest.importorskip("numpy")
    assert box_iou(np.array([0, 0, 10, 10]), np.array([5, 5, 15, 15])) == pytest.approx(1 / 7)


def test_end_to_end_with_coco_ground_truth() -> None:
    gt = coco_xywh_to_xyxy([64.0, 96.0, 256.0, 384.0])
    assert gt == (64.0, 96.0, 320.0, 480.0)
    pred = parse_box('[{"bbox_2d": [100, 200, 500, 1000]}]', "qwen3-vl", (640, 480))
    assert box_iou(pred, gt) == pytest.approx(1.0)


@pytest.mark.parametrize("box", [None, [1, 2, 3], "1,2,3,4", [1, 2, "x", 4], [math.nan] * 4])
def test_coco_xywh_bad_input(box) -> None:
    assert coco_xywh_to_xyxy(box) is None


def test_grounding_scores() -> None:
    scores = grounding_scores([1.0, 0.5, 0.49, None, math.nan])
    assert scores.accuracy == pytest.approx(2 / 5)
    assert scores.mean_iou == pytest.approx((1.0 + 0.5 + 0.49) / 5)
    assert (scores.count, scores.parse_failures) == (5, 1)
    assert grounding_scores([0.7], threshold=0.75).accuracy == 0.0
    assert grounding_scores([]) == (0.0, 0.0, 0, 0)


def test_input_size_from_grid() -> None:
    assert input_size_from_grid([1, 32, 40]) == (560, 448)  # (t, rows, cols) -> (w, h)


# ---- paper mode: eval_mm's float32 arithmetic -------------------------------------------------
def numpy_eval_mm_iou(coords, size, gt):
    """eval_mm/evaluate_grounding.py's arithmetic written out in numpy float32 (IEEE, one
    rounding per operation, the order of the script's torch ops)."""
    np = pytest.importorskip("numpy")
    f = np.float32
    c = [f(v) for v in (coords or (0.0, 0.0, 0.0, 0.0))]
    w, h = f(size[0]), f(size[1])
    p = [c[0] / f(999) * w, c[1] / f(999) * h, c[2] / f(999) * w, c[3] / f(999) * h]
    g = [f(v) for v in gt]
    with np.errstate(all="ignore"):
        area_p = (p[2] - p[0]) * (p[3] - p[1])
        area_g = (g[2] - g[0]) * (g[3] - g[1])
        iw = max(f(0), min(p[2], g[2]) - max(p[0], g[0]))
        ih = max(f(0), min(p[3], g[3]) - max(p[1], g[1]))
        inter = iw * ih
        return float(inter / (area_p + area_g - inter))


def test_issue_example_is_a_miss_in_float32_as_in_eval_mm() -> None:
    # Exact IoU 1/2; eval_mm gets 0.49999994 (162/999*333 = 53.999996 in float32): a miss.
    coords = parse_qwen_vl_coords("<ref>x</ref><box>(0,0),(162,999)</box>")
    assert coords == (0.0, 0.0, 162.0, 999.0)
    iou = eval_mm_iou(coords, (333, 333), [0, 0, 108, 333])
    assert iou == 0.4999999403953552
    assert iou < 0.5
    # float64 (the chat families' arithmetic) says 0.5, a hit.
    assert box_iou(parse_box("(0,0),(162,999)", "qwen-vl", (333, 333)), (0, 0, 108, 333)) == 0.5


def test_reverse_case_is_a_hit_in_float32_as_in_eval_mm() -> None:
    # Exact IoU 1/2 again; float64 rounds below (0.49999999999999994, a miss), float32 to 0.5.
    coords = parse_qwen_vl_coords("(0,0),(63,999)")
    assert eval_mm_iou(coords, (111, 111), [0, 0, 14, 111]) == 0.5
    assert box_iou(parse_box("(0,0),(63,999)", "qwen-vl", (111, 111)), (0, 0, 14, 111)) == (
        0.49999999999999994
    )


def test_eval_mm_box_scales_in_float32() -> None:
    assert eval_mm_box((0, 0, 162, 999), (333, 333)) == (0.0, 0.0, 53.999996185302734, 333.0)
    assert eval_mm_box(None, (640, 480)) == (0.0, 0.0, 0.0, 0.0)


def test_eval_mm_iou_matches_a_numpy_float32_transcription() -> None:
    rng = random.Random(5)
    hits_differ = 0
    for _ in range(3000):
        w, h = rng.randint(20, 1000), rng.randint(20, 1000)
        coords = tuple(float(rng.randint(0, 999)) for _ in range(4))
        x, y = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
        gt = [x, y, x + rng.uniform(1, w / 2), y + rng.uniform(1, h / 2)]
        got = eval_mm_iou(coords, (w, h), gt)
        ref = numpy_eval_mm_iou(coords, (w, h), gt)
        assert got == ref or (math.isnan(got) and math.isnan(ref)), (coords, w, h, gt)
        box = parse_box("({:g},{:g}),({:g},{:g})".format(*coords), "qwen-vl", (w, h))
        hits_differ += (got >= 0.5) != (box_iou(box, gt) >= 0.5)
    assert hits_differ == 0  # random boxes are almost never within 3e-5 of 0.5


@pytest.mark.parametrize(
    ("text", "expected_coords"),
    [
        ("(nan,0),(500,500)", (math.nan, 0.0, 500.0, 500.0)),
        ("(0,0),(inf,inf)", (0.0, 0.0, math.inf, math.inf)),
        ("(-inf,0),(500,500)", (-math.inf, 0.0, 500.0, 500.0)),
    ],
)
def test_non_finite_coordinates_are_kept_and_miss(text, expected_coords) -> None:
    coords = parse_qwen_vl_coords(text)
    assert coords is not None
    assert [str(v) for v in coords] == [str(v) for v in expected_coords]
    iou = eval_mm_iou(coords, (640, 480), [0, 0, 320, 240])
    ref = numpy_eval_mm_iou(coords, (640, 480), [0, 0, 320, 240])
    assert not iou >= 0.5  # NaN or 0: a miss, as in the script
    assert iou == ref or (math.isnan(iou) and math.isnan(ref))
    assert parse_box(text, "qwen-vl", (640, 480)) is None  # float64 mode: a parse failure


def test_paper_parse_failures_are_the_scripts() -> None:
    for text in ("(100,200), (300,400)", "(a,b),(c,d)", "(1,2,3),(4,5)", "nothing", None, 7):
        assert parse_qwen_vl_coords(text) is None
    assert eval_mm_iou(None, (640, 480), [0, 0, 10, 10]) == 0.0
    assert parse_qwen_vl_coords("(1e2, 2_0),(3,4)") == (100.0, 20.0, 3.0, 4.0)  # float() rules
