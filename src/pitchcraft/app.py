"""`pitchcraft.app:create_app`, kept importable for one release (the app lives in `web.app`)."""

from pitchcraft.web.app import create_app

__all__ = ["create_app"]
