"""The one-pass loader of a pushed change's envelope agrees with ``ChangeArgs``.

It loads what the schema loads, to the same values in the same order, and leaves everything it
does not vouch for to the schema, so refusals keep the schema's messages.
"""

from __future__ import annotations

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import sync as sync_schemas
from schemas.sync import MAX_VERSION, ChangeArgs, load_change

_SCHEMA = ChangeArgs()
_uuid_text = st.one_of(st.uuids().map(str), st.uuids().map(lambda u: u.hex))
_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

#: For each key: values the schema accepts, and values at or past its edges.
_KEYS = {
    "change_id": (_uuid_text, st.sampled_from(["", "0d4f9b3e", "{0d4f9b3e}"])),
    "entity": (
        st.sampled_from(["inspection", "photo", "track", "target"]),
        st.sampled_from(["Inspection", "case", ""]),
    ),
    "id": (_uuid_text, st.sampled_from(["x", "0" * 33])),
    "op": (st.sampled_from(["upsert", "delete"]), st.sampled_from(["UPSERT", "create"])),
    "base_version": (
        st.one_of(st.none(), st.integers(0, MAX_VERSION)),
        st.sampled_from([-1, MAX_VERSION + 1, True, 1.0, "1"]),
    ),
    "hlc": (st.text(max_size=40), st.just("")),
    "fields": (
        st.dictionaries(st.text(max_size=5), _anything, max_size=3),
        st.sampled_from([[], "findings", 0]),
    ),
}
_REQUIRED = ("change_id", "entity", "id", "op", "hlc")


@st.composite
def _changes(draw):
    """Well-formed envelopes, and now and then one value at or past its edge, one key missing
    or one too many."""
    change = {key: draw(_KEYS[key][0]) for key in _REQUIRED}
    change |= draw(st.fixed_dictionaries({}, optional={k: _KEYS[k][0] for k in _KEYS}))
    odd = draw(st.sampled_from([None, None, "missing", "unknown", *_KEYS]))
    if odd == "missing":
        del change[draw(st.sampled_from(_REQUIRED))]
    elif odd == "unknown":
        change["fields_"] = draw(_anything)
    elif odd is not None:
        change[odd] = draw(st.one_of(_KEYS[odd][1], _anything))
    return change


@settings(max_examples=600, deadline=None)
@given(_changes())
def test_the_loader_accepts_and_refuses_as_the_schema_does(change):
    _load_both_ways(change)


def _load_both_ways(change: dict) -> None:
    """The loader and the schema both refuse ``change`` with the same messages, or load it to
    the same values in the same order."""
    try:
        expected = _SCHEMA.load(change)
    except ma.ValidationError as refusal:
        with pytest.raises(ma.ValidationError) as caught:
            load_change(change)
        assert caught.value.messages == refusal.messages
        return
    loaded = load_change(change)
    assert loaded == expected
    assert list(loaded) == list(expected)
    assert loaded["fields_"] is not change.get("fields")  # a copy, as the schema gives


_WELL_FORMED = {
    "change_id": "5b0c8b0e-0f3a-4c55-8a4e-7d7e3d7c6f01",
    "entity": "inspection",
    "id": "0d4f9b3e-2c1a-4b8e-9f00-5a6b7c8d9e0f",
    "op": "upsert",
    "base_version": 3,
    "hlc": "0001763712000001:0000:pad-officer1",
    "fields": {"findings": "店门外堆放纸箱"},
}


@pytest.mark.parametrize(
    "change",
    [
        _WELL_FORMED,
        {k: v for k, v in _WELL_FORMED.items() if k not in ("base_version", "fields")},
        *(
            _WELL_FORMED | {key: value}
            for key, values in {
                "base_version": [None, 0, MAX_VERSION, -1, MAX_VERSION + 1, True, 2.0],
                "change_id": [None, 7, "urn:uuid:5b0c8b0e-0f3a-4c55-8a4e-7d7e3d7c6f01"],
                "entity": [None, "case"],
                "op": ["delete", None, "create"],
                "hlc": [None, 12, ""],
                "fields": [None, [], {}],
            }.items()
            for value in values
        ),
        *({k: v for k, v in _WELL_FORMED.items() if k != key} for key in _REQUIRED),
        _WELL_FORMED | {"device_id": "pad-officer1"},
    ],
    ids=repr,
)
def test_envelopes_at_the_edges_load_as_the_schema_loads_them(change):
    _load_both_ways(change)


def test_a_well_formed_change_never_needs_the_schema(monkeypatch):
    """The one pass is the path a device's ordinary change takes (the schema is the fallback)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the schema was asked")

    monkeypatch.setattr(sync_schemas._CHANGE_ARGS, "load", refuse)
    loaded = load_change(_WELL_FORMED)
    assert loaded["change_id"].hex == "5b0c8b0e0f3a4c558a4e7d7e3d7c6f01"
    assert loaded["fields_"] == {"findings": "店门外堆放纸箱"}
    assert load_change({**_WELL_FORMED, "base_version": None})["base_version"] is None
