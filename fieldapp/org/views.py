"""Districts, squadrons and their jurisdictions."""

from __future__ import annotations

from flask.views import MethodView

from fieldapp.api import Blueprint
from fieldapp.db import db
from fieldapp.errors import validation_error
from fieldapp.org import operations
from fieldapp.org.models import District, Squadron
from fieldapp.web.paging import paginate
from fieldapp.web.requests import current_actor, current_policy
from schemas.common import PageArgs, page_schema
from schemas.org import (
    DistrictCreateArgs,
    DistrictJurisdictionsSchema,
    DistrictSchema,
    JurisdictionsRedrawArgs,
    JurisdictionsRedrawnSchema,
    SquadronCreateArgs,
    SquadronSchema,
    SquadronUpdateArgs,
)

blp = Blueprint("org", __name__, description="Districts (区局), squadrons (中队) and jurisdictions")


@blp.route("/districts")
class DistrictsResource(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(DistrictSchema, "DistrictPage"))
    def get(self, paging):
        """The caller's district (admins: every district)."""
        return paginate(current_policy().scoped(District).order_by(District.id), **paging)

    @blp.arguments(DistrictCreateArgs)
    @blp.response(201, DistrictSchema)
    @blp.forbidden("district.manage")
    def post(self, args):
        """Add a district (admin); its squadrons and users are added after it."""
        current_policy().require("district.manage")
        return operations.create_district(current_actor(), args["code"], args["name"])


def _map_etag(district: District, squadrons: list[Squadron]) -> dict:
    return {"district_id": district.id, "squadrons": [[s.id, s.version] for s in squadrons]}


@blp.route("/districts/<int:district_id>/jurisdictions")
class DistrictJurisdictionsResource(MethodView):
    @blp.etag
    @blp.response(200, DistrictJurisdictionsSchema)
    def get(self, district_id: int):
        """The district's map: every squadron with its jurisdiction, under one ETag (what a
        redraw of several names in If-Match)."""
        district = current_policy().load(District, district_id, "district")
        squadrons = operations.district_squadrons(district)
        blp.set_etag(_map_etag(district, squadrons))
        return {"district_id": district.id, "squadrons": squadrons}

    @blp.etag
    @blp.arguments(JurisdictionsRedrawArgs)
    @blp.response(200, JurisdictionsRedrawnSchema)
    @blp.forbidden("squadron.manage")
    def put(self, args, district_id: int):
        """Redraw several squadrons' jurisdictions at once (admin; If-Match), e.g. a boundary
        moved between neighbours, which one at a time would overlap or strand targets. The
        new drawings are judged together: no overlaps, no active target left in no
        squadron's ground (422 on ``squadrons.<index>.jurisdiction`` naming the squadron or
        the targets). Targets a squadron no longer covers move to the one that now does.
        Squadrons not listed keep their jurisdictions."""
        policy = current_policy()
        district = policy.load_to_write(District, district_id, "district")
        policy.require("squadron.manage")
        operations.lock_district(district.id)
        blp.check_etag(_map_etag(district, operations.district_squadrons(district)))
        moved = operations.redraw_jurisdictions(current_actor(), district, args["squadrons"])
        db.session.flush()
        squadrons = operations.district_squadrons(district)
        blp.set_etag(_map_etag(district, squadrons))
        return {"district_id": district.id, "squadrons": squadrons, "targets_moved": moved}


def _etag(squadron: Squadron) -> dict:
    return {"id": squadron.id, "version": squadron.version}


@blp.route("/squadrons")
class SquadronsResource(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(SquadronSchema, "SquadronPage"))
    def get(self, paging):
        """The squadrons of the caller's district, with their jurisdiction polygons."""
        return paginate(current_policy().scoped(Squadron).order_by(Squadron.id), **paging)

    @blp.arguments(SquadronCreateArgs)
    @blp.response(201, SquadronSchema)
    @blp.forbidden("squadron.manage")
    def post(self, args):
        """Add a squadron with its jurisdiction (admin): one overlapping another squadron's of
        the district is refused (422 on ``jurisdiction``); a shared border is not an
        overlap."""
        current_policy().require("squadron.manage")
        district = db.session.get(District, args["district_id"])
        if district is None:
            raise validation_error({"district_id": [f"no district {args['district_id']}"]})
        return operations.create_squadron(
            current_actor(), district, args["name"], args["jurisdiction"]
        )


@blp.route("/squadrons/<int:squadron_id>")
class SquadronResource(MethodView):
    @blp.etag
    @blp.response(200, SquadronSchema)
    def get(self, squadron_id: int):
        """One squadron."""
        squadron = current_policy().load(Squadron, squadron_id, "squadron")
        blp.set_etag(_etag(squadron))
        return squadron

    @blp.etag
    @blp.arguments(SquadronUpdateArgs)
    @blp.response(200, SquadronSchema)
    @blp.forbidden("squadron.manage")
    def patch(self, changes, squadron_id: int):
        """Rename a squadron or redraw its jurisdiction (admin; If-Match). A new drawing may
        not overlap another squadron's of the district, nor leave any of its active targets in
        no squadron's ground (422 on ``jurisdiction``); the targets it no longer covers move
        to the squadron that does."""
        policy = current_policy()
        squadron = policy.load_to_write(Squadron, squadron_id, "squadron")
        policy.require("squadron.manage")
        blp.check_etag(_etag(squadron))
        operations.update_squadron(current_actor(), squadron, changes)
        db.session.flush()
        blp.set_etag(_etag(squadron))
        return squadron
