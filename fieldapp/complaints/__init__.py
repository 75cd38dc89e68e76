"""Citizen complaints (12345 投诉) about targets."""
