"""flask-smorest wiring: the Api with the error envelope, and the Blueprint every feature uses."""

from __future__ import annotations

import typing

import flask
import flask_smorest
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter, UnicodeConverter

from fieldapp import jsontext
from fieldapp.errors import APIError, envelope, validation_error
from schemas.common import MAX_INT_ID, NUL_MESSAGE, text_errors

API_PREFIX = "/api/v1"

#: JSON nested deeper than this is refused; real bodies (sync batches, GeoJSON) need about 6.
MAX_JSON_DEPTH = 64


class IdConverter(IntegerConverter):
    """``<int:...>`` in paths, bounded by the database's integer range.

    A larger number cannot name a row; it answers 404 like any unknown id instead of reaching
    the database (where SQLite overflows and PostgreSQL refuses it: a 500).
    """

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_INT_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class TextConverter(UnicodeConverter):
    """``<string:...>`` (the default) without NUL characters, which PostgreSQL text refuses."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, *args, **kwargs)
        self.regex = self.regex.replace("[^/]", "[^/\\x00]", 1)


def _too_deep() -> APIError:
    message = f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
    return APIError(400, "malformed_json", message, errors={"json": {"_schema": [message]}})


def check_json_text(
    data: typing.Any, *, strings_checked: bool = False, per_item: typing.Collection[str] = ()
) -> None:
    """Refuse JSON that the database cannot store or that is nested absurdly deep.

    Nesting deeper than :data:`MAX_JSON_DEPTH` is a 400 ``malformed_json``. Strings (values and
    keys) with a NUL character or an unpaired surrogate are a 422 under the top-level field that
    holds them (:func:`schemas.common.text_errors`). ``strings_checked``: the body's text showed
    there are no such strings, and only the depth is checked. ``per_item``: top-level fields
    whose items the endpoint checks one by one, so that one bad item is refused alone (a sync
    batch's changes).
    """
    _check_depth(data)
    if strings_checked:
        return
    if isinstance(data, dict):
        errors = text_errors({k: v for k, v in data.items() if k not in per_item})
    else:
        errors = text_errors({"_schema": data})
    if errors:
        raise validation_error(errors)


def _check_depth(data: typing.Any) -> None:
    """:func:`check_json_text`'s depth rule alone: the fields of a body object are at depth 1,
    the items of a body array at depth 2; nothing may sit deeper than :data:`MAX_JSON_DEPTH`."""
    if type(data) is dict:
        containers, depth = [data], 0
    elif type(data) is list:
        containers, depth = [data], 1
    else:
        return
    while containers:
        children = []
        for item in containers:
            children.extend(item.values() if type(item) is dict else item)
        if children and depth + 1 > MAX_JSON_DEPTH:
            raise _too_deep()
        containers = [child for child in children if type(child) is dict or type(child) is list]
        depth += 1


#: Set on a request whose JSON text proved free of NUL characters and lone surrogates.
_STRINGS_CHECKED = "fieldapp.json_strings_checked"


def json_text_checked(req: flask.Request) -> bool:
    """Whether the request's JSON text proved free of NUL characters and unpaired surrogates
    when it was read (so a field checked per item needs no look of its own)."""
    return req.environ.get(_STRINGS_CHECKED, False)


class StrictParser(FlaskParser):
    """webargs parser that answers bad bodies with the envelope's codes.

    Malformed JSON is a 400 ``malformed_json``; a body sent as something other than JSON is a 415
    instead of being read as "no body" and reported as missing fields. Text the database cannot
    store (NUL characters, unpaired surrogates) is a 422 here, before any query sees it.
    """

    def load_json(self, req: flask.Request, schema: ma.Schema) -> typing.Any:
        if req.content_length and not core.is_json(req.mimetype):
            raise APIError(
                415,
                "unsupported_media_type",
                f"send the body as application/json, not {req.mimetype or 'no content type'}",
            )
        try:
            data = super().load_json(req, schema)
        except RecursionError:
            raise _too_deep() from None
        if data is not core.missing:
            check_json_text(
                data,
                strings_checked=req.environ.get(_STRINGS_CHECKED, False),
                per_item=getattr(schema, "TEXT_CHECKED_PER_ITEM", ()),
            )
        return data

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        if not is_json_request(req):
            return core.missing
        raw = req.get_data(cache=True)
        data = jsontext.read_plain(raw)
        if data is jsontext.NOT_PLAIN:
            return core.parse_json(raw)  # the standard library's reading, and its errors
        # Read by orjson: no lone surrogates, and NUL only where the text spells it out.
        req.environ[_STRINGS_CHECKED] = b"\\u0000" not in raw
        return data

    #: Query strings follow their schema's ``unknown`` (strict: refused) like bodies do;
    #: webargs would otherwise drop unknown query parameters silently.
    DEFAULT_UNKNOWN_BY_LOCATION: typing.ClassVar[dict] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def load_querystring(self, req: flask.Request, schema: ma.Schema) -> typing.Any:
        errors = {
            key: [NUL_MESSAGE]
            for key, value in req.args.items(multi=True)
            if "\x00" in key or "\x00" in value
        }
        if errors:
            raise validation_error(errors, location="query")
        # An unknown parameter is refused like an unknown JSON field: a misspelt filter
        # (``?squadorn_id=2``) would otherwise answer with everything, unfiltered. Parameters
        # whose names start with "_" are cache busters (``?_=1733380000``) and mean nothing.
        args = MultiDict(
            (key, value) for key, value in req.args.items(multi=True) if not key.startswith("_")
        )
        return self._makeproxy(args, schema)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs) -> typing.NoReturn:
        raise APIError(
            400,
            "malformed_json",
            "the request body is not valid JSON",
            errors={"json": {"_schema": [str(error)]}},
        )


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class ErrorSchema(ma.Schema):
    """The error envelope of every error answer (documentation only; see fieldapp.errors)."""

    code = ma.fields.Integer(metadata={"description": "the HTTP status"})
    status = ma.fields.String(metadata={"description": "the HTTP reason phrase"})
    error = ma.fields.String(
        metadata={"description": "stable machine code, e.g. validation_failed; branch on this"}
    )
    message = ma.fields.String(metadata={"description": "for people; may be Chinese"})
    errors = ma.fields.Dict(
        metadata={"description": 'field-level messages by location: {"json": {"field": [...]}}'}
    )


class Api(flask_smorest.Api):
    """The API with one error envelope for every error, including routing errors."""

    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *args, **kwargs):
        # Before any rule is added: every <int:...> and <string:...> in a path is the bounded one.
        app.url_map.converters.update(int=IdConverter, string=TextConverter, default=TextConverter)
        super().init_app(app, *args, **kwargs)

    def handle_http_exception(self, error):
        body, code, headers = envelope(error)
        return body, code, headers

    def _register_error_handlers(self):
        super()._register_error_handlers()
        self._app.register_error_handler(APIError, self.handle_http_exception)
