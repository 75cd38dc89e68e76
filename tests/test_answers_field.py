"""The one-pass answers field accepts, refuses and dumps what the nested ``Answer`` schema does."""

from __future__ import annotations

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import fields

from schemas.inspections import ITEM_CODE, MAX_PHOTOS, Answer, Answers, InspectionFieldsArgs


class _Nested(ma.Schema):
    answers = fields.Dict(keys=fields.String(validate=ITEM_CODE), values=fields.Nested(Answer))


class _OnePass(ma.Schema):
    answers = Answers()


_uuid_text = st.uuids().map(str)
_anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
)
_answer = st.fixed_dictionaries(
    {},
    optional={
        "result": st.one_of(st.sampled_from(["pass", "fail", "na", "maybe", ""]), _anything),
        "note": st.one_of(st.text(max_size=30), st.just("x" * 2001), _anything),
        "photo_ids": st.one_of(
            st.lists(_uuid_text, max_size=3),
            st.lists(st.one_of(_uuid_text, _anything), max_size=3),
            st.just([f"{n:032x}" for n in range(MAX_PHOTOS + 1)]),
            _anything,
        ),
        "colour": _anything,
    },
)
_codes = st.one_of(st.sampled_from(["S01", "S02", "C10"]), st.text(max_size=4))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.dictionaries(_codes, st.one_of(_answer, _anything), max_size=4), _anything))
def test_the_one_pass_loader_agrees_with_the_nested_schema(answers):
    def outcome(schema):
        try:
            return True, schema.load({"answers": answers})["answers"]
        except ma.ValidationError as exc:
            return False, set(exc.messages["answers"]) if isinstance(answers, dict) else None

    accepted, value = outcome(_Nested())
    accepted_fast, value_fast = outcome(_OnePass())
    assert accepted_fast == accepted
    # Loaded answers are equal; refused ones name the same item codes.
    assert value_fast == value


_stored_answer = st.fixed_dictionaries(
    {},
    optional={
        "result": st.one_of(st.none(), st.sampled_from(["pass", "fail", "na"])),
        "note": st.one_of(st.none(), st.text(max_size=20)),
        "photo_ids": st.one_of(
            st.none(), st.lists(st.one_of(st.uuids(), _uuid_text, st.uuids().map(lambda u: u.hex)))
        ),
        "extra": _anything,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.none(), st.dictionaries(_codes, _stored_answer, max_size=4)))
def test_the_one_pass_dump_agrees_with_the_nested_schema(answers):
    """Loaded answers (UUID objects) and stored ones (text, keys missing, extra keys) alike."""
    assert _OnePass().dump({"answers": answers}) == _Nested().dump({"answers": answers})


@pytest.mark.parametrize(
    ("answers", "errors"),
    [
        ({"S01": {"result": "maybe"}}, {"S01": {"result": ["Must be one of: pass, fail, na."]}}),
        ({"S01": {}}, {"S01": {"result": ["Missing data for required field."]}}),
        ({"S01": {"result": "pass", "colour": 1}}, {"S01": {"colour": ["Unknown field."]}}),
        ({"s1": {"result": "pass"}}, {"s1": ["an item code such as S03"]}),
        (
            {"S01": {"result": "fail", "photo_ids": ["nope"]}},
            {"S01": {"photo_ids": {0: ["Not a valid UUID."]}}},
        ),
    ],
)
def test_a_bad_answer_is_named_by_item_and_field(answers, errors):
    with pytest.raises(ma.ValidationError) as caught:
        InspectionFieldsArgs().load({"answers": answers}, partial=True)
    assert caught.value.messages == {"answers": errors}
