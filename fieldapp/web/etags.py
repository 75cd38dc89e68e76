"""Entity tags of the records read with a conditional GET and written with ``If-Match`` (a
target and its file, an inspection, a checklist, the risk settings).

The ETag of such an answer is ``"<version tag>.<body digest>"``:

- the *version tag* names the record's version, as the tags clients held before this form did
  (the part a write's precondition is about);
- the *body digest* covers the answer's body as sent, so everything the answer adds to the record
  (a target file's inspections, complaints, cases and risk; an inspection's follow-up and case)
  changes the tag as well, although it changes no version.

``If-None-Match`` compares whole tags: 304 only when the body would be the same. ``If-Match``
compares only the version part, because a write is about the record, not about what is derived
from it: a client that read the record before a follow-up arrived may still review it. A tag
without a dot is a plain version tag (what older clients hold), and still matches its version.
"""

from __future__ import annotations

import hashlib
import typing

import marshmallow as ma
from flask import Response, current_app, request

from fieldapp.errors import APIError

#: Hex digits of the body digest (128 bits of SHA-256: no two bodies of a record collide).
_DIGEST_HEX = 32


def entity_tag(version_tag: str, body: bytes) -> str:
    """The ETag (unquoted) of an answer with this body, for the record at this version."""
    return f"{version_tag}.{hashlib.sha256(body).hexdigest()[:_DIGEST_HEX]}"


def version_part(tag: str) -> str:
    """The version tag in an ETag: the part before the dot (all of a tag without one)."""
    return tag.split(".", 1)[0]


def json_body(data: typing.Any, schema: ma.Schema) -> Response:
    """``data`` dumped by ``schema`` as the JSON answer every view sends (Flask's JSON)."""
    return current_app.json.response(schema.dump(data))


def conditional_get(version_tag: str, data: typing.Any, schema: ma.Schema) -> Response:
    """The answer to a GET of a record: 200 with the body and its ETag, or 304 with the same
    ETag (and no body) when ``If-None-Match`` names it, i.e. when the client holds this very
    body. The 304 carries the ETag, as a client revalidating its copy relies on."""
    response = json_body(data, schema)
    tag = entity_tag(version_tag, response.get_data())
    if request.if_none_match.contains_weak(tag):
        return Response(status=304, headers={"ETag": f'"{tag}"'})
    response.set_etag(tag)
    return response


def if_match_names(version_tag: str) -> bool:
    """Whether the request's ``If-Match`` names the record at this version (``*`` names any):
    one of its strong tags has this version part."""
    if_match = request.if_match
    if if_match.star_tag:
        return True
    # An empty tag ("") is parsed as None: it names no version.
    return any(tag and version_part(tag) == version_tag for tag in if_match.as_set())


def require_if_match(version_tag: str) -> None:
    """The precondition of a write: 428 ``precondition_required`` without ``If-Match``, 412
    ``precondition_failed`` when it names another version than ``version_tag`` (the record
    changed since the client read it: its write would undo what came between)."""
    if not request.if_match:
        raise APIError(
            428,
            "precondition_required",
            'send "If-Match" with the ETag you read',
            errors={"headers": {"If-Match": ["required: the ETag you read"]}},
        )
    if not if_match_names(version_tag):
        raise APIError(412, "precondition_failed", "it changed since you read it; read it again")


#: For the OpenAPI document: what the ETag of these answers is, and how it is compared.
ETAG_DESCRIPTION = (
    '"<version tag>.<body digest>": the digest changes with anything in the body (also what'
    " is derived from other records), the version tag with the record's version."
    " If-None-Match compares the whole tag (304 when the body is the same); If-Match only the"
    " version tag (a tag without a dot is a version tag alone)."
)

#: For the OpenAPI document: the ETag header of such an answer.
ETAG_HEADER = {"ETag": {"description": ETAG_DESCRIPTION, "schema": {"type": "string"}}}

#: For the OpenAPI document: the If-Match a write of such a record needs.
IF_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string"},
    "description": "the ETag you read (only its version part is compared)",
}

#: For the OpenAPI document: If-None-Match on a GET of such a record.
IF_NONE_MATCH_PARAMETER = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "the ETag of the body you hold: 304 if it is still the same",
}

#: For the OpenAPI document: why such a write answers 412 or 428.
PRECONDITION_ERRORS = {
    412: "`precondition_failed`: If-Match names another version",
    428: "`precondition_required`: If-Match is missing",
}
