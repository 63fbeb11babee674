"""A ``.ssal`` corpus's ``meta.json`` is ours but may be edited: its layout and preprocessing
settings are checked on reading, with the file and the field named."""

from __future__ import annotations

import json

import pytest

from ssal.data.canonical import read_canonical
from ssal.data.io import save_dataset
from ssal.data.synthetic import generate
from ssal.errors import SsalInputError


@pytest.mark.parametrize("field, value, message", [
    ("layout", "zzz", "field 'layout': unknown skeleton layout 'zzz'"),
    ("preprocess", {"length": -5}, "field 'preprocess': preprocess.length"),
    ("preprocess", {"bogus": 1}, "field 'preprocess': preprocess: unknown setting(s): bogus"),
    ("preprocess", "x", "field 'preprocess'"),
])
def test_edited_meta_fields_are_named(tmp_path, field, value, message):
    path = save_dataset(generate(8, seed=0), tmp_path / "c.ssal")
    meta = json.loads((path / "meta.json").read_text())
    meta[field] = value
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SsalInputError) as err:
        read_canonical(path)
    assert str(err.value.where).endswith("meta.json") and message in err.value.problem
