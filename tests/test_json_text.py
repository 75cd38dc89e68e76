"""JSON text read and written with orjson means what the standard library's reading means."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldapp import jsontext
from fieldapp.api import MAX_JSON_DEPTH, check_json_text
from fieldapp.errors import APIError

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_text_reads_back_to_the_value_the_standard_library_reads(value):
    text = json.dumps(value, ensure_ascii=False)
    assert jsontext.loads(text) == json.loads(text)
    assert jsontext.loads(text.encode()) == json.loads(text)
    assert json.loads(jsontext.dumps(value)) == value


@pytest.mark.parametrize(
    "text",
    [
        "123456789012345678901234567890",  # past 64 bits: stays an exact integer
        '{"n": -18446744073709551617}',
        "NaN",
        '{"a": Infinity}',
        '"\\ud800"',  # a lone surrogate
        '"老王\\u0000面馆"',
    ],
)
def test_the_edges_orjson_reads_differently_are_read_by_the_standard_library(text):
    read = jsontext.loads(text)
    expected = json.loads(text)
    assert read == expected or (read != read and expected != expected)  # NaN
    assert type(read) is type(expected)


def test_a_value_orjson_cannot_write_is_written_by_the_standard_library():
    assert jsontext.dumps({"n": 2**70, 1: "长"}) == '{"n":1180591620717411303424,"1":"长"}'


def _nested(depth: int, leaf):
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
@pytest.mark.parametrize("leaf", ["text", 7, [], {}])
@pytest.mark.parametrize("body", ["object", "array"])
def test_the_depth_only_check_refuses_what_the_full_walk_refuses(depth, leaf, body):
    data = {"f": _nested(depth, leaf)} if body == "object" else [_nested(depth, leaf)]

    def refused(**kwargs) -> bool:
        try:
            check_json_text(data, **kwargs)
        except APIError as error:
            assert error.error == "malformed_json"
            return True
        return False

    assert refused(strings_checked=True) == refused()
    deepest = depth + 1 if body == "object" else depth + 2  # the leaf's depth
    assert refused() == (deepest > MAX_JSON_DEPTH)
