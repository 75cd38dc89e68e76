"""Every model, imported once so the metadata (and Alembic) sees all tables."""

from fieldapp.audit.models import AuditEntry
from fieldapp.auth.models import Device, LoginFailure, Token, User
from fieldapp.checklists.models import Checklist, ChecklistItem, ChecklistVersion
from fieldapp.complaints.models import Complaint
from fieldapp.db import change_counter
from fieldapp.inspections.models import Case, Inspection, inspection_officers
from fieldapp.org.models import District, Squadron
from fieldapp.targets.models import Target
from fieldapp.tasks.models import Task, task_assignees

__all__ = [
    "AuditEntry",
    "Case",
    "Checklist",
    "ChecklistItem",
    "ChecklistVersion",
    "Complaint",
    "Device",
    "District",
    "Inspection",
    "LoginFailure",
    "Squadron",
    "Target",
    "Task",
    "Token",
    "User",
    "change_counter",
    "inspection_officers",
    "task_assignees",
]
