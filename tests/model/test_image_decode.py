"""Image decoding for the model: every PIL mode converted as the Qwen2-VL image processor does
(transparency onto white), 16-bit greyscale scaled instead of saturated, decompression bombs and
truncated or corrupt files refused per item with the file named."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image as PILImage
from transformers.image_transforms import convert_to_rgb

from qwenvl_eval.model.preprocess import ImageDecodeError, decode_image, to_rgb
from qwenvl_eval.types import ImageRef


def pixels(im) -> list:
    return np.asarray(im).reshape(-1, 3).tolist()


def processor(im) -> list:
    """transformers' own conversion (what Qwen2VLImageProcessor(Pil) applies)."""
    return np.asarray(convert_to_rgb(im, return_numpy=True)).reshape(-1, 3).tolist()


def png_ref(im, tmp_path, name="x.png", **save) -> ImageRef:
    path = tmp_path / name
    im.save(path, **save)
    return ImageRef(name, path=path)


def rgba():
    data = [(200, 10, 10, 0), (10, 20, 30, 255), (100, 50, 200, 128), (0, 0, 0, 1)]
    im = PILImage.new("RGBA", (4, 1))
    im.putdata(data)
    return im


def test_rgba_is_composited_onto_white(tmp_path):
    im = rgba()
    # Transparent red -> white; opaque kept; half: v * 128/255 + 255 * 127/255, rounded.
    expected = [[255, 255, 255], [10, 20, 30], [177, 152, 227], [254, 254, 254]]
    assert pixels(to_rgb(im)) == expected == processor(im)
    assert pixels(decode_image(png_ref(im, tmp_path))) == expected
    # Qwen-VL v1 (PIL convert, as its visual.py): the hidden colours show.
    assert pixels(to_rgb(im, "drop")) == [[200, 10, 10], [10, 20, 30], [100, 50, 200], [0, 0, 0]]


def test_rgba_equals_qwen_vl_utils_paste_for_every_alpha():
    # qwen-vl-utils' to_rgb: RGBA pasted onto a white RGB image with its alpha as the mask.
    vals = [(r, g, 255 - r, a) for a in range(256) for r in (0, 37, 100, 200, 255) for g in (0, 90)]
    im = PILImage.new("RGBA", (len(vals), 1))
    im.putdata(vals)
    white = PILImage.new("RGB", im.size, (255, 255, 255))
    white.paste(im, mask=im.split()[3])
    assert pixels(to_rgb(im)) == pixels(white)


def test_la_is_composited_onto_white(tmp_path):
    im = PILImage.new("LA", (3, 1))
    im.putdata([(50, 0), (50, 255), (0, 128)])
    expected = [[255, 255, 255], [50, 50, 50], [127, 127, 127]]
    assert pixels(to_rgb(im)) == expected == processor(im)
    assert pixels(decode_image(png_ref(im, tmp_path))) == expected


def palette(transparent: bool, tmp_path) -> ImageRef:
    im = PILImage.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 0, 255, 0, 128, 0] + [0] * 759)
    im.putdata([0, 1, 2])
    save = {"transparency": 1} if transparent else {}
    return png_ref(im, tmp_path, f"p{int(transparent)}.png", **save)


def test_palette_with_and_without_transparency(tmp_path):
    with_t = palette(True, tmp_path)
    with PILImage.open(with_t.path) as im:
        assert im.mode == "P" and im.info["transparency"] == 1
        assert pixels(to_rgb(im)) == processor(im)
    assert pixels(decode_image(with_t)) == [[255, 0, 0], [255, 255, 255], [0, 128, 0]]
    assert pixels(decode_image(with_t, "drop")) == [[255, 0, 0], [0, 0, 255], [0, 128, 0]]
    assert pixels(decode_image(palette(False, tmp_path))) == [[255, 0, 0], [0, 0, 255], [0, 128, 0]]


def test_rgb_and_grey_with_a_transparency_key(tmp_path):
    im = PILImage.new("RGB", (2, 1))
    im.putdata([(1, 2, 3), (9, 9, 9)])
    ref = png_ref(im, tmp_path, "rgbkey.png", transparency=(1, 2, 3))
    with PILImage.open(ref.path) as opened:
        assert pixels(to_rgb(opened)) == processor(opened)
    assert pixels(decode_image(ref)) == [[255, 255, 255], [9, 9, 9]]
    grey = PILImage.new("L", (2, 1))
    grey.putdata([7, 8])
    assert pixels(decode_image(png_ref(grey, tmp_path, "lkey.png", transparency=7))) == [
        [255, 255, 255],
        [8, 8, 8],
    ]


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("L", [0, 7, 255], [[0, 0, 0], [7, 7, 7], [255, 255, 255]]),
        ("1", [0, 255, 0], [[0, 0, 0], [255, 255, 255], [0, 0, 0]]),
        # PIL's CMYK (no colour profile): channel = round((255 - c) * (255 - k) / 255).
        (
            "CMYK",
            [(0, 0, 0, 0), (255, 0, 0, 0), (10, 20, 30, 40)],
            [[255, 255, 255], [0, 255, 255], [207, 198, 190]],
        ),
    ],
)
def test_modes_without_transparency_are_pils_convert(mode, values, expected):
    im = PILImage.new(mode, (3, 1))
    im.putdata(values)
    assert pixels(to_rgb(im)) == expected == processor(im)


def test_cmyk_jpeg_file(tmp_path):
    im = PILImage.new("CMYK", (8, 8), (10, 20, 30, 40))
    ref = png_ref(im, tmp_path, "cmyk.jpg", quality=100)
    with PILImage.open(ref.path) as opened:
        assert opened.mode == "CMYK"
        assert pixels(decode_image(ref)) == processor(opened)


SIXTEEN = [0, 257, 32768, 65535, 1000]
SCALED = [0, 1, 128, 255, 4]  # round(v * 255 / 65535)


@pytest.mark.parametrize(("mode", "dtype"), [("I;16", "<u2"), ("I;16B", ">u2"), ("I", "<i4")])
def test_wide_greyscale_is_scaled_not_saturated(mode, dtype):
    im = PILImage.frombytes(mode, (5, 1), np.array(SIXTEEN, dtype).tobytes())
    assert [p[0] for p in pixels(to_rgb(im))] == SCALED
    assert [p[0] for p in pixels(to_rgb(im, "drop"))] == SCALED
    # The processor (PIL convert) clips everything above 255: the documented difference.
    assert [p[0] for p in processor(im)] == [0, 255, 255, 255, 255]


def test_mode_i_is_clipped_to_16_bits():
    im = PILImage.frombytes("I", (3, 1), np.array([-5, 70000, 65535], "<i4").tobytes())
    assert [p[0] for p in pixels(to_rgb(im))] == [0, 255, 255]


def test_sixteen_bit_png_file_and_transparency_key(tmp_path):
    im = PILImage.frombytes("I;16", (5, 1), np.array(SIXTEEN, "<u2").tobytes())
    ref = png_ref(im, tmp_path, "g16.png")
    with PILImage.open(ref.path) as opened:
        assert opened.mode.startswith("I")
    assert [p[0] for p in pixels(decode_image(ref))] == SCALED
    im.info["transparency"] = 1000
    assert pixels(to_rgb(im))[-1] == [255, 255, 255]
    assert [p[0] for p in pixels(to_rgb(im))[:4]] == SCALED[:4]


# ---- bounded decoding ----------------------------------------------------------------------
def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (8-bit grey) with a tiny IDAT: opening it
    reads only the header; decoding it would allocate width * height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_bomb_over_pils_threshold_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30000, 30000))  # 900 M pixels
    with pytest.raises(ImageDecodeError, match=r"bomb\.png: image too large to decode"):
        decode_image(ImageRef("bomb.png", path=path))


def test_budget_refuses_before_decoding(tmp_path):
    # 100 M pixels: PIL itself only warns; the budget refuses without decoding a pixel.
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(10000, 10000))
    with pytest.raises(ImageDecodeError) as err:
        decode_image(ImageRef("big.png", path=path))
    assert str(err.value) == (
        f"{path}: image is 10000x10000 = 100,000,000 pixels, over the decode budget of "
        "89,478,485 (a decompression bomb?)"
    )
    small = png_ref(PILImage.new("L", (40, 30)), tmp_path, "small.png")
    with pytest.raises(
        ImageDecodeError, match="40x30 = 1,200 pixels, over the decode budget of 1,000"
    ):
        decode_image(small, max_pixels=1000)
    assert decode_image(small, max_pixels=1200).size == (40, 30)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_an_error_naming_it(tmp_path, fmt):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageDecodeError, match=rf"cut\.{fmt.lower()}: truncated or corrupt image"):
        decode_image(ImageRef(path.name, path=path))


def test_garbage_and_embedded_bytes_are_named(tmp_path):
    path = tmp_path / "garbage.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(ImageDecodeError, match=r"garbage\.png: cannot read the image"):
        decode_image(ImageRef("garbage.png", path=path))
    with pytest.raises(ImageDecodeError, match=r"^row7\.jpg \(embedded image bytes\): cannot read"):
        decode_image(ImageRef("row7.jpg", data=b"\xff\xd8junk"))
    good = io.BytesIO()
    PILImage.new("RGB", (2, 2), (1, 2, 3)).save(good, "PNG")
    assert pixels(decode_image(ImageRef("ok", data=good.getvalue()))) == [[1, 2, 3]] * 4


# ---- through the runners: one bad image is one failed item ---------------------------------
def test_hf_runner_fails_only_the_bad_items(hf_runners, image_dir, tmp_path):
    from qwenvl_eval.types import GenerateRequest, Generation, Image, Text

    from .conftest import set_batching

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(10000, 10000))
    rgba_ref = png_ref(rgba(), tmp_path, "alpha.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes((image_dir / "img3.png").read_bytes()[:500])
    refs = [ImageRef("bomb", path=bomb), ImageRef("cut", path=cut), rgba_ref]
    runner = hf_runners["qwen2-vl"]
    set_batching(runner, 2)
    reqs = [
        GenerateRequest(f"r{i}", (Image(r), Text("What is it?")), Generation(max_new_tokens=2))
        for i, r in enumerate(refs)
    ]
    out = {r.id: r for r in runner.generate(reqs)}
    assert "bomb.png: image is 10000x10000" in out["r0"].error
    assert "cut.png: truncated or corrupt image" in out["r1"].error
    assert out["r2"].error is None and out["r2"].text is not None
    # The processor got the composited pixels: same tensor as feeding it the white image.
    prepared = runner.prepare(reqs[2], 0)
    white = runner.image_processor(images=[to_rgb(rgba())], return_tensors="pt")
    assert np.array_equal(prepared.inputs.pixel_values.float(), white["pixel_values"].float())


def test_hf_provenance_records_the_image_backend(hf_runners):
    prov = hf_runners["qwen2-vl"].provenance()
    assert prov["image_processor"] == "Qwen2VLImageProcessorPil"
    assert prov["image_processor_backend"] == "pil"
    assert prov["image_conversion"].startswith("transformers convert_to_rgb")


def test_a_dataset_cell_is_decoded_from_its_bytes_when_first_opened(tmp_path):
    # HF copies keep images encoded in the Arrow table until the runner decodes them: the same
    # bounded decoding and conversion as a file, and the cell is only read then.
    from qwenvl_eval.tasks.data.hf_parquet import ArrowImageRef

    buf = io.BytesIO()
    rgba().save(buf, format="PNG")
    reads = []

    def fetch() -> bytes:
        reads.append(1)
        return buf.getvalue()

    ref = ArrowImageRef("cell", fetch=fetch)
    assert reads == []
    assert pixels(decode_image(ref)) == pixels(decode_image(png_ref(rgba(), tmp_path)))
    assert reads == [1]
    assert ref.read_bytes() == buf.getvalue()

    def broken() -> bytes:
        raise ValueError("row 3: the 'image' cell holds no image bytes")

    with pytest.raises(ImageDecodeError, match=r"cell .*row 3: the 'image' cell holds no image"):
        decode_image(ArrowImageRef("cell", fetch=broken))
