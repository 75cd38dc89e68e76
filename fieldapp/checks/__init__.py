"""Automatic case-file checks (案卷评查): flags a supervisor reads beside an inspection."""
