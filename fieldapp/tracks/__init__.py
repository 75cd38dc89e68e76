"""GPS tracks (轨迹): officers' patrol points, append-only."""
