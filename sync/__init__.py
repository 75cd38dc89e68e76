"""The sync engine: change sequence, versions, cursors and merge rules.

Nothing here imports Flask: the HTTP layer in ``fieldapp`` calls into it.
"""
