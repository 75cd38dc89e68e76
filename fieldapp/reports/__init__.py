"""Reports: the monthly report every squadron files by the 25th."""
