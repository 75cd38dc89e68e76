"""Supervision (督察): case-file reviews (案卷评查) and supervision orders (督办单)."""
