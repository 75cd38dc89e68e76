"""Standardized inspection forms (标准化检查表单), versioned."""
