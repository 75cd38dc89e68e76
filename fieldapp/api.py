"""flask-smorest wiring: the Api with the error envelope, and the Blueprint every feature uses."""

from __future__ import annotations

import importlib.resources
import typing
from collections import abc
from copy import deepcopy
from http import HTTPStatus

import flask
import flask_smorest
import marshmallow as ma
from flask_smorest.utils import prepare_response
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


# -- error answers in the OpenAPI document --------------------------------------------------------

#: What each error answer means, as the OpenAPI document tells it: one response component per
#: status (``#/components/responses/<HTTPStatus name>``), registered once and referenced by every
#: operation that can give it. An operation that gives a status for a reason of its own says so
#: with :meth:`Blueprint.errors`. In backquotes: the body's ``error``.
ERROR_ANSWERS: dict[int, str] = {
    400: "`malformed_json`: the body is not JSON (or does not decode from its Content-Encoding),"
    " or it is nested deeper than 64 levels",
    401: "`unauthenticated`: no bearer token, or one that is invalid, expired or revoked; sign in"
    " again",
    403: "`forbidden`: the caller may not do this (an out-of-scope write, or a role that may not)",
    404: "`not_found`: no such record, or one outside the caller's reading scope (API.md: its"
    " existence is not revealed)",
    409: "`version_conflict`, `id_conflict` or `invalid_transition`: the record is not in a state"
    " that allows this (any more)",
    412: "`precondition_failed`: If-Match does not name the current version; read it again",
    413: "`payload_too_large`: the body is over the size limit (a JSON body:"
    " FIELDAPP_MAX_JSON_BYTES, 16 MiB by default, counted decoded)",
    415: "`unsupported_media_type`: the body is not sent as application/json, or with a"
    " Content-Encoding other than gzip or zstd",
    422: "`validation_failed`: fields missing, unknown or invalid; `errors` names each under its"
    " location (json, query, headers)",
    428: "`precondition_required`: send If-Match with the ETag you read",
    429: "`rate_limited`: too many failed sign-ins for this username; try again after Retry-After"
    " seconds",
}

#: Headers that come with an error answer, documented on its response component.
ERROR_HEADERS: dict[int, dict] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "seconds until the next sign-in is looked at",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

#: The catch-all answer of every operation: anything not listed for it still has the envelope.
DEFAULT_ERROR_DESCRIPTION = (
    "Any other error, in the same envelope: e.g. 409 `version_conflict` when a concurrent write"
    " got there first, 503 `audit_unavailable` when a change cannot be audited, 503"
    " `database_unavailable` (with Retry-After) while the database cannot answer"
)

#: Where :meth:`Blueprint.add_url_rule` notes, per operation, what its error answers follow from.
_FACTS = "fieldapp_facts"
#: Where :meth:`Blueprint.headers` notes the request headers an operation reads itself.
_HEADERS = "fieldapp_headers"


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with fieldapp's parser and its error answers documented.

    Every operation's document lists the error answers it can give, with the envelope. Those that
    follow from how the operation is declared are added here, so that no view lists them by hand
    and none is forgotten (:meth:`_prepare_error_doc`); a view adds those of its own logic with
    :meth:`errors` and :meth:`forbidden`.
    """

    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # First: the response callback turns the responses gathered so far into the document.
        self._prepare_doc_cbks.insert(0, self._prepare_error_doc)
        # Last: the arguments callback sets the parameters read by webargs, these add to them.
        self._prepare_doc_cbks.append(self._prepare_header_doc)

    def add_url_rule(self, rule, endpoint=None, view_func=None, *args, **kwargs):
        super().add_url_rule(rule, endpoint, view_func, *args, **kwargs)
        for method, doc in self._docs[self._endpoints[-1]].items():
            if method == "parameters":
                continue
            view = getattr(view_func, method) if isinstance(view_func, type) else view_func
            doc[_FACTS] = {
                # fieldapp.web.requests.public marks the views that need no token, or a whole
                # MethodView (its _is_public reads the same mark; tests/test_openapi.py holds the
                # two together).
                "public": getattr(view, "_fieldapp_public", False)
                or getattr(view_func, "_fieldapp_public", False),
                "path_parameters": "<" in rule,
            }

    @staticmethod
    def _prepare_error_doc(doc, doc_info, **kwargs):
        """Add the error answers that follow from the operation's declaration.

        - 401 unless the view is public: the request lifecycle refuses a missing, invalid,
          expired or revoked token before the view runs.
        - 404 where the path names a record: unknown, out of the caller's reading scope, or not
          even well formed (routing).
        - 400, 413 and 415 where the operation reads a JSON body: the parser's and the request's
          answers to a body that is not JSON, too large, or sent as something else.
        - 422 where the operation reads no query parameters: the request lifecycle refuses any
          that is sent.
        """
        facts = doc_info.get(_FACTS)
        if facts is None:
            return doc
        codes = []
        if not facts["public"]:
            codes.append(401)
        if facts["path_parameters"]:
            codes.append(404)
        arguments = doc_info.get("arguments", {}).get("parameters", [])
        if any(isinstance(p, abc.Mapping) and p.get("in") == "json" for p in arguments):
            codes += [400, 413, 415]
        if not any(isinstance(p, abc.Mapping) and p.get("in") == "query" for p in arguments):
            codes.append(422)  # fieldapp.web.requests.refuse_unknown_query
        if codes:
            responses = doc_info.setdefault("response", {}).setdefault("responses", {})
            for code in codes:
                # An answer the view documents itself, with its own reasons, stays as it is.
                responses.setdefault(code, [HTTPStatus(code).name])
        return doc

    @staticmethod
    def errors(*codes: int, why: abc.Mapping[int, str] | None = None, headers=None):
        """Decorator: the view gives these error answers beyond those derived for it.

        ``codes`` are documented by their shared response (:data:`ERROR_ANSWERS`); each code in
        ``why`` by what it means on this operation instead (with ``headers``: ``{code: {name:
        header object}}`` for headers that come with it). Documentation only: nothing changes at
        run time.
        """
        why = dict(why or {})
        headers = headers or {}

        def decorate(view):
            # A copy: the function's doc may be shared with the function it wraps.
            view._apidoc = deepcopy(getattr(view, "_apidoc", {}))
            responses = view._apidoc.setdefault("response", {}).setdefault("responses", {})
            for code in sorted({*codes, *why}):
                if code in why:
                    answer = {
                        "description": why[code],
                        "schema": ErrorSchema,
                        "content_type": None,
                    }
                    if code in headers:
                        answer["headers"] = headers[code]
                else:
                    answer = HTTPStatus(code).name
                responses.setdefault(code, []).append(answer)
            return view

        return decorate

    @staticmethod
    def headers(*parameters: str | dict):
        """Decorator: request headers the view reads itself (webargs reads none), documented as
        parameters: a header object without its ``in``, or the name of a parameter component
        (``"IF_NONE_MATCH"``). Documentation only."""

        def decorate(view):
            view._apidoc = deepcopy(getattr(view, "_apidoc", {}))
            view._apidoc.setdefault(_HEADERS, []).extend(
                p if isinstance(p, str) else {"in": "header", **p} for p in parameters
            )
            return view

        return decorate

    @staticmethod
    def _prepare_header_doc(doc, doc_info, **kwargs):
        if doc_info.get(_HEADERS):
            doc.setdefault("parameters", []).extend(doc_info[_HEADERS])
        return doc

    @classmethod
    def forbidden(cls, *permissions: str):
        """Decorator: the view answers 403 unless the caller holds ``permissions`` (those of
        fieldapp.auth.policy it requires), documented with who may, as the 403 itself says."""
        from fieldapp.auth.policy import refusal  # the policy needs the models, loaded by now

        reasons = "; ".join(refusal(permission) for permission in permissions)
        return cls.errors(why={403: f"`forbidden`: {reasons}"})


def _documented_field(converter, field, ret, **kwargs) -> dict:
    """apispec attribute function: the document of a field that says how it is documented.

    ``OPENAPI`` on a field class: its schema object (custom fields, which apispec shows as
    anything). ``metadata["documented_as"]`` on a field documents a value that the field passes
    through unread, for the view or the operations to check (a sync batch's changes, checked one
    by one so that one bad change is refused alone): a schema, a list of schemas any of which
    fits, a schema object (a dict), or a function returning one of these (for names defined
    later in the module).
    """
    # What the field's own metadata says (a description) wins over its class's.
    documented = {k: v for k, v in getattr(field, "OPENAPI", {}).items() if k not in field.metadata}
    shown = field.metadata.get("documented_as")
    if callable(shown) and not isinstance(shown, type):
        shown = shown()
    if shown is None:
        return documented
    description = ret.get("description")
    ret.clear()  # the field's own document is "anything", and a reference stands alone
    if isinstance(shown, list | tuple):
        documented["anyOf"] = [converter.resolve_nested_schema(s) for s in shown]
        if description:
            documented["description"] = description
    elif isinstance(shown, dict):
        documented.update(shown)
    else:
        documented.update(converter.resolve_nested_schema(shown))
    return documented


def _swagger_ui_file(filename: str):
    """A file of Swagger UI, as the flask-swagger-ui package ships it (no CDN needed)."""
    dist = importlib.resources.files("flask_swagger_ui") / "dist"
    return flask.send_from_directory(str(dist), filename, max_age=86400)


class Api(flask_smorest.Api):
    """The API with one error envelope for every error, including routing errors."""

    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app, *args, **kwargs):
        # Before any rule is added: every <int:...> and <string:...> in a path is the bounded one.
        app.url_map.converters.update(int=IdConverter, string=TextConverter, default=TextConverter)
        super().init_app(app, *args, **kwargs)
        self.ma_plugin.converter.add_attribute_function(_documented_field)

    def _register_responses(self):
        """One response component per HTTP status (flask-smorest's), the error answers told as
        fieldapp gives them (:data:`ERROR_ANSWERS`), and the catch-all ``DEFAULT_ERROR``."""
        for status in HTTPStatus:
            response = {"description": ERROR_ANSWERS.get(status, status.phrase)}
            if not 100 <= status < 200 and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            if status in ERROR_HEADERS:
                response["headers"] = ERROR_HEADERS[status]
            prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": DEFAULT_ERROR_DESCRIPTION, "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def _register_swagger_ui_rule(self, blueprint):
        super()._register_swagger_ui_rule(blueprint)
        # The page's scripts and styles are served from here (OPENAPI_SWAGGER_UI_URL points at
        # them): a CDN is out of reach on the intranet the devices' developers work on.
        path = self.config.get("OPENAPI_SWAGGER_UI_PATH")
        if path is not None:
            blueprint.add_url_rule(
                f"/{path.strip('/')}/static/<path:filename>",
                endpoint="openapi_swagger_ui_file",
                view_func=_swagger_ui_file,
            )

    def handle_http_exception(self, error):
        body, code, headers = envelope(error)
        return body, code, headers

    def _register_error_handlers(self):
        super()._register_error_handlers()
        self._app.register_error_handler(APIError, self.handle_http_exception)
