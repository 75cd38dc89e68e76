"""双随机一公开: seeded random draws of targets and officer pairs, recorded and published."""
