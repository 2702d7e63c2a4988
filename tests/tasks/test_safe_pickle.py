from __future__ import annotations

import collections
import os
import pickle

import pytest

from qwenvl_eval.errors import DataError
from qwenvl_eval.tasks.data.safe_pickle import load_plain, loads_plain
from scripts.builtin.vqa_grounding import py2_pickle_dumps

REF = {
    "sent_ids": [0, 1],
    "file_name": "COCO_train2014_000000581857_16.jpg",
    "ann_id": 1719310,
    "ref_id": 0,
    "image_id": 581857,
    "split": "train",
    "sentences": [
        {"tokens": ["the", "lady"], "raw": "THE LADY", "sent_id": 0, "sent": "the lady"},
        {"tokens": ["café"], "raw": "café", "sent_id": 1, "sent": "café"},
    ],
    "category_id": 1,
}


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips_at_every_protocol(protocol):
    obj = [REF, (1, 2.5, None, True, False), {"b": b"\x00\xff", "n": 2**70, "f": -0.0}]
    assert loads_plain(pickle.dumps(obj, protocol=protocol)) == obj


def test_python2_style_pickle_of_refs():
    data = py2_pickle_dumps([REF])
    # Written the way cPickle wrote the refer files: protocol 2, ASCII text as byte strings.
    assert data[:2] == b"\x80\x02" and pickle.SHORT_BINSTRING + b"\x08sent_ids" in data
    assert pickle.BINUNICODE in data  # the non-ASCII sentence
    assert loads_plain(data) == [REF]


def test_python2_byte_strings_that_are_not_utf8_fall_back_to_latin1():
    data = b"\x80\x02]q\x00U\x04caf\xe9q\x01a."  # py2 str 'caf\xe9' (Latin-1 bytes)
    assert loads_plain(data) == ["café"]


def test_sets_are_plain_data():
    assert loads_plain(pickle.dumps({1, 2}, protocol=2)) == {1, 2}
    assert loads_plain(pickle.dumps(frozenset("ab"), protocol=4)) == frozenset("ab")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_code_is_refused_before_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([REF, _Evil()], protocol=2))
    with pytest.raises(DataError) as err:
        load_plain(path)
    assert str(path) in str(err.value)
    assert "system" in str(err.value) and "refused" in str(err.value)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "obj", [collections.OrderedDict(a=1), collections.Counter("ab"), DataError("x", "y"), print]
)
def test_any_global_is_refused(obj):
    with pytest.raises(DataError, match="refused to unpickle"):
        loads_plain(pickle.dumps(obj, protocol=2))


def test_copy_reg_reconstructor_is_refused():
    # What Python 2 writes for an instance of a new-style class.
    data = (
        b"\x80\x02ccopy_reg\n_reconstructor\nq\x00c__main__\nX\nq\x01"
        b"c__builtin__\nobject\nq\x02N\x87q\x03Rq\x04."
    )
    with pytest.raises(DataError, match="copy_reg._reconstructor"):
        loads_plain(data)


def test_codecs_encode_only_latin1():
    assert loads_plain(pickle.dumps(b"\xe9t\xe9", protocol=2)) == b"\xe9t\xe9"
    bad = (
        b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcq\x01"
        b"X\x06\x00\x00\x00base64q\x02\x86q\x03Rq\x04."
    )
    with pytest.raises(DataError, match="not a readable pickle"):
        loads_plain(bad)


def test_truncated_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="not a readable pickle"):
        loads_plain(pickle.dumps([REF], protocol=2)[:-20], source="x.p")
    with pytest.raises(DataError, match="file not found"):
        load_plain(tmp_path / "refs(umd).p")
    with pytest.raises(DataError, match="persistent"):
        loads_plain(b"\x80\x02X\x01\x00\x00\x00aQ.")
