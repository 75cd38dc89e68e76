"""The HTTP plumbing shared by every feature: request lifecycle, paging, index routes."""
