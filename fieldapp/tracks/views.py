"""``GET /tracks``: an officer's patrol track for a map."""

from __future__ import annotations

from datetime import UTC

from flask import current_app
from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.auth.models import User
from fieldapp.errors import not_found, validation_error
from fieldapp.tracks import operations
from fieldapp.web.requests import current_policy
from schemas.tracks import TrackArgs, TrackCollectionSchema

blp = Blueprint("tracks", __name__, description="GPS tracks (轨迹)")


@blp.route("/tracks")
class TracksResource(MethodView):
    @blp.arguments(TrackArgs, location="query")
    @blp.response(200, TrackCollectionSchema)
    @blp.errors(why={404: "`not_found`: officer_id names no officer whose track you may see"})
    def get(self, args):
        """An officer's track between ``from`` and ``to`` as GeoJSON lines, simplified for
        display, with distance, duration and the gaps where the device was silent.

        Officers see their own track; leaders their squadron's; supervisors their district's.
        """
        settings = operations.TrackSettings.from_config(current_app.config)
        policy = current_policy()
        officer = policy.load(User, args["officer_id"], "officer")
        if not policy.allows("track.view", officer):
            raise not_found("officer")
        start, end = args["from_"].astimezone(UTC), args["to"].astimezone(UTC)
        if end - start > settings.max_span:
            raise validation_error(
                {"to": [f"at most {settings.max_span.days} days after from"]}, location="query"
            )
        return operations.track_lines(officer.id, start, end, settings)
