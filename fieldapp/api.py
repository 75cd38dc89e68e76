"""flask-smorest wiring: the Api with the error envelope, and the Blueprint every feature uses."""

from __future__ import annotations

import typing

import flask
import flask_smorest
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser

from fieldapp.errors import APIError, envelope

API_PREFIX = "/api/v1"


class StrictParser(FlaskParser):
    """webargs parser that answers bad bodies with the envelope's codes.

    Malformed JSON is a 400 ``malformed_json``; a body sent as something other than JSON is a 415
    instead of being read as "no body" and reported as missing fields.
    """

    def load_json(self, req: flask.Request, schema: ma.Schema) -> typing.Any:
        if req.content_length and not core.is_json(req.mimetype):
            raise APIError(
                415,
                "unsupported_media_type",
                f"send the body as application/json, not {req.mimetype or 'no content type'}",
            )
        return super().load_json(req, schema)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs) -> typing.NoReturn:
        raise APIError(
            400,
            "malformed_json",
            "the request body is not valid JSON",
            errors={"json": {"_schema": [str(error)]}},
        )


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = StrictParser()


class Api(flask_smorest.Api):
    """The API with one error envelope for every error, including routing errors."""

    def handle_http_exception(self, error):
        body, code, headers = envelope(error)
        return body, code, headers

    def _register_error_handlers(self):
        super()._register_error_handlers()
        self._app.register_error_handler(APIError, self.handle_http_exception)
