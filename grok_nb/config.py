"""Where things live and which server to talk to: argument → environment variable → default."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_BASE_URL = "https://api.x.ai"
ENV_API_KEY = "XAI_API_KEY"
ENV_BASE_URL = "GROK_NB_BASE_URL"
ENV_HOME = "GROK_NB_HOME"


def home_dir(home: str | os.PathLike | None = None) -> Path:
    """grok_nb's data folder: the argument, ``GROK_NB_HOME``, or the platform's user data dir."""
    if home is None:
        home = os.environ.get(ENV_HOME) or None
    if home is None:
        import platformdirs

        home = platformdirs.user_data_dir("grok_nb", appauthor=False)
    path = Path(home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_api_key(api_key: str | None) -> str | None:
    """The key from the argument or ``XAI_API_KEY``; blank counts as none."""
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    return key.strip() or None if key else None


def resolve_base_url(base_url: str | None) -> str | None:
    """The base URL from the argument or ``GROK_NB_BASE_URL``; None when neither is set."""
    url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL)
    return url.strip().rstrip("/") or None if url else None


def backend_name(base_url: str, simulated: bool) -> str:
    """``xai`` for xAI's own hosts, ``simulator`` for anything else (embedded or stand-in)."""
    from urllib.parse import urlsplit

    host = urlsplit(base_url).hostname or ""
    if not simulated and (host == "x.ai" or host.endswith(".x.ai")):
        return "xai"
    return "simulator"
