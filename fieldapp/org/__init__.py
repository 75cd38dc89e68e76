"""Organisation: districts (区局) and squadrons (中队) with their jurisdiction polygons."""
