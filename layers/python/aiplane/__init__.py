"""aiplane domain layer: shared by every Lambda and by the local server."""
