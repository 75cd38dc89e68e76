"""The one-pass loader of an inspection's device fields agrees with ``InspectionFieldsArgs``.

It loads what the schema loads, to the same values, dumps them to the same wire form, and leaves
everything it does not vouch for to the schema, so refusals keep the schema's messages.
"""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import inspections
from schemas.inspections import (
    InspectionFieldsArgs,
    inspection_fields_wire,
    load_inspection_fields,
)

_SCHEMA = InspectionFieldsArgs()
_uuid_text = st.uuids().map(str)
_anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_aware = st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.timezones())
_naive = st.datetimes(min_value=datetime(2000, 1, 1))
_coordinates = st.fixed_dictionaries(
    {"lon": st.floats(-180, 180), "lat": st.one_of(st.floats(-90, 90), st.integers(-90, 90))},
    optional={
        "accuracy_m": st.one_of(st.none(), st.floats(0, 100_000), st.integers(0, 100_000)),
        "crs": st.sampled_from(["wgs84", "gcj02", "bd09"]),
    },
)
_ODD_COORDINATES = {
    "lon": st.one_of(st.sampled_from([-180.5, 180.000001, 2**1100, None]), _anything),
    "lat": st.one_of(st.floats(), st.just(True), _anything),
    "accuracy_m": st.one_of(st.sampled_from([-0.5, 100_000.5, float("inf")]), _anything),
    "crs": st.one_of(st.sampled_from(["utm", "WGS84", None]), _anything),
    "altitude": _anything,
}


@st.composite
def _odd_coordinates(draw):
    location = draw(_coordinates)
    key = draw(st.sampled_from(sorted(_ODD_COORDINATES)))
    location[key] = draw(_ODD_COORDINATES[key])
    if draw(st.booleans()):
        del location[draw(st.sampled_from(sorted(location)))]
    return location


_answers = st.dictionaries(
    st.sampled_from(["S01", "S02", "S10"]),
    st.fixed_dictionaries(
        {"result": st.sampled_from(["pass", "fail", "na"])},
        optional={"note": st.text(max_size=5), "photo_ids": st.lists(_uuid_text, max_size=2)},
    ),
    max_size=3,
)
_odd_answers = st.dictionaries(
    st.sampled_from(["S01", "s3"]),
    st.fixed_dictionaries({"result": st.sampled_from(["pass", "maybe"])}),
    min_size=1,
)

#: For each field: values the schema accepts, and values at or past its edges.
_FIELDS = {
    "target_id": (
        st.one_of(_uuid_text, st.uuids().map(lambda u: u.hex)),
        st.sampled_from(["", "0d4f9b3e", None]),
    ),
    "checklist_id": (st.integers(1, 2**31 - 1), st.sampled_from([0, 2**31, True, 2.0, "3"])),
    "checklist_version": (st.integers(1, 10_000), st.sampled_from([0, 10_001, False, "1"])),
    "officer_ids": (
        st.lists(_uuid_text, min_size=1, max_size=6),
        st.one_of(st.just([]), st.lists(_uuid_text, min_size=7, max_size=7), st.just(["x"])),
    ),
    "origin": (st.sampled_from(["scheduled", "random", "patrol"]), st.sampled_from(["PATROL"])),
    "task_id": (st.one_of(st.none(), _uuid_text), st.just("task-7")),
    "draw_id": (st.one_of(st.none(), _uuid_text), st.just(7)),
    "started_at": (
        _aware.map(datetime.isoformat),
        st.one_of(st.none(), _naive.map(datetime.isoformat), st.just("2026-11-20 9:30")),
    ),
    "ended_at": (
        st.one_of(st.none(), _aware.map(datetime.isoformat)),
        _naive.map(datetime.isoformat),
    ),
    "location": (_coordinates, _odd_coordinates()),
    "answers": (_answers, st.one_of(st.none(), _odd_answers)),
    "findings": (st.text(max_size=10), st.one_of(st.none(), st.just("长" * 10_001))),
    "outcome": (
        st.sampled_from(["compliant", "case_opened", "penalty_waived", None]),
        st.just("fined"),
    ),
    "rectification_deadline": (
        st.one_of(st.none(), st.dates().map(str)),
        st.sampled_from(["2026-02-30", "2026-11-27T00:00:00", "27/11/2026"]),
    ),
    "legal_basis": (st.one_of(st.none(), st.text(max_size=5)), st.just("x" * 301)),
    "follow_up_of": (st.one_of(st.none(), _uuid_text), st.just([])),
    "photo_ids": (st.lists(_uuid_text, max_size=3), st.lists(_uuid_text, min_size=51)),
    "status": (st.sampled_from(["draft", "submitted"]), st.sampled_from(["approved", None])),
}


@st.composite
def _fields(draw):
    """Well-formed fields, and now and then one value at or past its edge, or one too many."""
    data = draw(st.fixed_dictionaries({}, optional={k: v for k, (v, _) in _FIELDS.items()}))
    odd = draw(st.sampled_from([None, None, "review", *_FIELDS]))
    if odd == "review":
        data["review"] = draw(_anything)
    elif odd is not None:
        data[odd] = draw(st.one_of(_FIELDS[odd][1], _anything))
    return data


def _by_schema(data: dict):
    loaded = _SCHEMA.load(data, partial=True)
    for name in ("started_at", "ended_at"):
        if loaded.get(name) is not None:
            loaded[name] = loaded[name].astimezone(UTC)
    return loaded


@settings(max_examples=600, deadline=None)
@given(_fields())
def test_the_loader_accepts_refuses_and_dumps_as_the_schema_does(data):
    _load_both_ways(data)


def _load_both_ways(data: dict) -> None:
    """The loader and the schema both refuse ``data`` with the same messages, or load it to the
    same values in the same order, which dump to the same wire form."""
    try:
        expected = _by_schema(data)
    except ma.ValidationError as refusal:
        with pytest.raises(ma.ValidationError) as caught:
            load_inspection_fields(data)
        assert caught.value.messages == refusal.messages
        return
    loaded = load_inspection_fields(data)
    assert loaded == expected
    assert list(loaded) == list(expected)  # the order the versions list changed fields in
    assert inspection_fields_wire(loaded) == _SCHEMA.dump(expected)


def test_a_well_formed_create_never_needs_the_schema(monkeypatch):
    """The one pass is the path a device's ordinary create takes (the schema is the fallback)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the schema was asked")

    monkeypatch.setattr(inspections._FIELDS_SCHEMA, "load", refuse)
    fields = {
        "target_id": "0d4f9b3e-2c1a-4b8e-9f00-5a6b7c8d9e0f",
        "checklist_id": 3,
        "checklist_version": 2,
        "officer_ids": ["5b0c8b0e-0f3a-4c55-8a4e-7d7e3d7c6f01"],
        "origin": "patrol",
        "task_id": None,
        "started_at": "2026-11-20T09:30:00+08:00",
        "ended_at": "2026-11-20T09:50:00+08:00",
        "location": {"lon": 121.4701, "lat": 31.37, "accuracy_m": 8, "crs": "gcj02"},
        "answers": {"S01": {"result": "fail", "note": "占道", "photo_ids": []}},
        "findings": "店门外堆放纸箱",
        "outcome": "rectification_ordered",
        "rectification_deadline": "2026-11-27",
        "legal_basis": None,
        "photo_ids": [],
        "status": "submitted",
    }
    loaded = load_inspection_fields(fields)
    assert loaded["started_at"] == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    assert inspection_fields_wire(loaded)["location"] == {
        "lon": 121.4701,
        "lat": 31.37,
        "accuracy_m": 8.0,
        "crs": "gcj02",
    }


_EDGES = [
    ("checklist_id", [0, 1, 2**31 - 1, 2**31, True, 2.0, "3", None]),
    ("checklist_version", [0, 1, 10_000, 10_001, False, "1"]),
    ("officer_ids", [[], ["x"], [str(n) * 32 for n in range(7)]]),
    ("started_at", ["2026-11-20T09:30:00", "2026-11-20T09:30:00Z", "2026-11-20 09:30+08:00"]),
    ("ended_at", [None, "2026-11-20T09:30:00", "2026-11-20T09:30:00.5+05:45"]),
    ("rectification_deadline", [None, "2026-02-30", "2026-11-27", "20261127", 20261127]),
    ("findings", ["", "长" * 10_000, "长" * 10_001, None]),
    ("legal_basis", [None, "x" * 300, "x" * 301]),
    ("photo_ids", [[], [str(n).zfill(32) for n in range(50)], [f"{n:032}" for n in range(51)]]),
    ("status", ["draft", "submitted", "approved", None]),
    ("outcome", [None, "compliant", "fined"]),
]
_PLACE = {"lon": 121.47, "lat": 31.37}
_LOCATION_EDGES = [
    _PLACE | {"lon": lon} for lon in (-180, 180, -180.5, 180.000001, 2**1100, float("nan"), True)
] + [
    _PLACE | {"lat": 90.0000001},
    _PLACE | {"accuracy_m": -0.5},
    _PLACE | {"accuracy_m": 100_000},
    _PLACE | {"accuracy_m": 100_000.5},
    _PLACE | {"accuracy_m": None},
    _PLACE | {"crs": "utm"},
    _PLACE | {"crs": None},
    _PLACE | {"altitude": 4},
    {"lon": 121.47},
    {},
]


@pytest.mark.parametrize(
    "data",
    [{name: value} for name, values in _EDGES for value in values]
    + [{"location": location} for location in _LOCATION_EDGES],
    ids=repr,
)
def test_values_at_the_edges_load_as_the_schema_loads_them(data):
    _load_both_ways(data)


def test_every_field_the_schema_takes_has_a_one_pass_loader():
    """A field added to the schema without a loader would send every change to the slow path."""
    assert set(inspections._FIELD_LOADERS) == set(_SCHEMA.fields)
