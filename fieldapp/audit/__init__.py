"""The audit log: one append-only entry for every state change, written in its transaction."""
