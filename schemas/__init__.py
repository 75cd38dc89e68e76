"""Marshmallow schemas: the wire format of every request (``*Args``) and response (``*Schema``)."""
