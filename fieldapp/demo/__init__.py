"""The demo district: ``fieldapp demo`` builds a realistic, deterministic data set and serves it."""
