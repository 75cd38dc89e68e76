"""Inspection records (检查记录) and the cases (立案) they open."""
