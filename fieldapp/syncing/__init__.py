"""The HTTP face of the sync engine (``sync/``): push, pull, the conflict log, history."""
