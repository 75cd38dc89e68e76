"""The risk model's numbers as first installed (migration 0005 writes them to ``risk_settings``).

The running system reads them from that table only; an admin reads them at
``GET /api/v1/risk/settings`` and changes them with ``PATCH`` (checked, audited), then runs
``fieldapp risk recompute`` to apply them to every target. Points are capped per factor so that
the caps add up to at most 100: the score is the sum of its factors and stays within 0..100.
"""

from __future__ import annotations

DEFAULT_SETTINGS: dict[str, dict] = {
    "inherent": {
        "description": "固有风险: points for what the target is, capped at `cap`",
        "value": {
            "cap": 30,
            # Shops by business type (others score `other`).
            "business_type": {
                "catering": 16,
                "fresh_produce": 12,
                "car_repair": 14,
                "recycling": 14,
                "hardware": 8,
                "retail": 6,
                "beauty_salon": 4,
                "laundry": 4,
                "pharmacy": 3,
                "other": 6,
            },
            # Sites by scale, plus their current phase.
            "scale": {"large": 16, "medium": 12, "small": 8, "micro": 5},
            "phase": {"earthwork": 10, "foundation": 8, "structure": 6, "finishing": 3},
            "sensitive_surroundings": 6,
        },
    },
    "compliance": {
        "description": "合规: the latest approved inspection's failed items, by severity",
        "value": {"cap": 30, "severity": {"minor": 4, "moderate": 10, "severe": 22}},
    },
    "history": {
        "description": "历史: cases opened and items failed again, within `months`",
        "value": {"cap": 20, "months": 12, "case": 8, "repeat": 5},
    },
    "complaints": {
        "description": "投诉: substantiated 12345 complaints within `days`",
        "value": {"cap": 10, "days": 90, "each": 5},
    },
    "credit": {
        "description": "信用: public credit class A (best) to D",
        "value": {"cap": 10, "class": {"A": 0, "B": 2, "C": 6, "D": 10}},
    },
    "levels": {
        "description": "score thresholds: low < medium <= ... (DESIGN.md)",
        "value": {"medium": 30, "elevated": 50, "high": 70},
    },
    "floors": {
        "description": "the worst single factor sets a minimum level",
        "value": {
            "severe_finding": {"level": "high", "days": 90},
            "credit_d": {"level": "elevated"},
            "new_target": {"level": "medium", "inspections": 2, "days": 365},
        },
    },
    "downgrade": {
        "description": "a level falls one step at a time, only when all of these hold",
        "value": {
            "clean_inspections": {"shop": 3, "site": 4},
            "days_at_level": 30,
            "complaint_free_days": 60,
        },
    },
    "frequency": {
        "description": "at least one inspection every this many days, by kind and level",
        "value": {
            "shop": {"low": 180, "medium": 90, "elevated": 30, "high": 14},
            "site": {"low": 60, "medium": 30, "elevated": 14, "high": 7},
        },
    },
    "draw": {
        "description": "双随机: default share of each level drawn (high risk is always drawn)",
        "value": {"rates": {"low": 0.05, "medium": 0.15, "elevated": 0.3, "high": 1.0}},
    },
}
