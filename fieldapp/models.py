"""Every model, imported once so the metadata (and Alembic) sees all tables."""

from fieldapp.audit.models import AuditEntry, audit_chain_head
from fieldapp.auth.models import Device, LoginFailure, Token, User
from fieldapp.checklists.models import Checklist, ChecklistItem, ChecklistVersion
from fieldapp.complaints.models import Complaint
from fieldapp.db import change_counter
from fieldapp.draws.models import Draw
from fieldapp.inspections.models import Case, Inspection, inspection_officers
from fieldapp.org.models import District, JurisdictionVersion, Squadron
from fieldapp.photos.models import Photo, PhotoUpload
from fieldapp.risk.models import RiskLevelChange, RiskSetting, TargetRisk
from fieldapp.supervision.models import CaseReview, SupervisionOrder
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task, task_assignees
from fieldapp.tracks.models import TrackPoint
from sync.models import Conflict, RecordVersion, ScopeExit, SyncChange, Tombstone, UserExit

__all__ = [
    "AuditEntry",
    "Case",
    "CaseReview",
    "Checklist",
    "ChecklistItem",
    "ChecklistVersion",
    "Complaint",
    "Conflict",
    "Device",
    "District",
    "Draw",
    "Inspection",
    "JurisdictionVersion",
    "LoginFailure",
    "Photo",
    "PhotoUpload",
    "RecordVersion",
    "RiskLevelChange",
    "RiskSetting",
    "ScopeExit",
    "Squadron",
    "SupervisionOrder",
    "SyncChange",
    "Target",
    "TargetRisk",
    "Task",
    "Token",
    "Tombstone",
    "TrackPoint",
    "User",
    "UserExit",
    "audit_chain_head",
    "change_counter",
    "inspection_officers",
    "task_assignees",
]
