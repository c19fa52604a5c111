"""Every setting grok_nb reads and every environment variable it knows, read in one place and checked before use.

Argument → environment variable → default. Also: safe names for server URLs and keys.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from .errors import ConfigurationError

DEFAULT_BASE_URL = "https://api.x.ai"
ENV_API_KEY = "XAI_API_KEY"
ENV_BASE_URL = "GROK_NB_BASE_URL"
ENV_HOME = "GROK_NB_HOME"
#: The longest wait a server's ``Retry-After`` may ask for (seconds); a longer one is cut to this, nonsense is ignored.
MAX_RETRY_AFTER_S = 60.0


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """grok_nb's data folder: the argument, ``GROK_NB_HOME``, or the platform's user data dir."""
    if home is None:
        home = os.environ.get(ENV_HOME) or None
    if home is None:
        home = platformdirs.user_data_dir("grok_nb", appauthor=False)
    return Path(home).expanduser()


def check_home(path: Path) -> Path:
    """Create the data folder and prove it is writable, or say which folder and what to do."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / "videos").mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"grok_nb cannot write its history and videos to {path} ({exc.strerror or exc}). Nothing was sent. "
            f"Set {ENV_HOME} (or home=...) to a writable folder.") from None
    return path


def resolve_api_key(api_key: str | None) -> str | None:
    """The key from the argument or ``XAI_API_KEY``; blank counts as none. A key that cannot be sent is refused."""
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigurationError(f"api_key must be a string, not {type(key).__name__}")
    key = key.strip()
    if not key:
        return None
    for i, ch in enumerate(key):
        # Never show the key itself: only where the bad character sits and what it is.
        if ch.isspace() or not ch.isprintable() or not ch.isascii():
            what = "a line break" if ch in "\r\n" else "a space" if ch.isspace() else (
                "a control character" if not ch.isprintable() else f"a non-ASCII character ({ch!r})")
            raise ConfigurationError(
                f"The API key ({'api_key=' if api_key is not None else ENV_API_KEY}) has {what} at position {i + 1} "
                f"of {len(key)}; HTTP headers cannot carry it. Copy the key again from the xAI console. "
                "Nothing was sent.")
    return key


def resolve_base_url(base_url: str | None) -> str | None:
    """The base URL from the argument or ``GROK_NB_BASE_URL``; None when neither is set. An unusable one is refused."""
    url = base_url if base_url is not None else os.environ.get(ENV_BASE_URL)
    if url is None:
        return None
    if not isinstance(url, str):
        raise ConfigurationError(f"base_url must be a string like 'https://api.x.ai', not {type(url).__name__}")
    url = url.strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    shown = redact_url(url)
    source = "base_url=" if base_url is not None else ENV_BASE_URL
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{source} {shown!r} is not an http(s) URL with a host, such as "
                                 f"'https://api.x.ai' or 'http://127.0.0.1:8000'. Nothing was sent.")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ConfigurationError(f"{source} {shown!r} contains spaces or control characters. Nothing was sent.")
    return url


def backend_name(base_url: str, simulated: bool) -> str:
    """``xai`` for xAI's own hosts, ``simulator`` for anything else (embedded or stand-in)."""
    host = urlsplit(base_url).hostname or ""
    if not simulated and (host == "x.ai" or host.endswith(".x.ai")):
        return "xai"
    return "simulator"

ENV_USER = "GROK_NB_USER"
ENV_HISTORY_URL = "GROK_NB_HISTORY_URL"
ENV_SHARED_URL = "GROK_NB_SHARED_URL"


def user_name() -> str | None:
    """``GROK_NB_USER``: who makes runs here, when set (else the history says ``user@host``)."""
    return os.environ.get(ENV_USER, "").strip() or None


def history_url() -> str | None:
    """``GROK_NB_HISTORY_URL``: a PostgreSQL history shared by a team; None keeps it in a SQLite file in the home."""
    return os.environ.get(ENV_HISTORY_URL, "").strip() or None


def shared_url() -> str | None:
    """``GROK_NB_SHARED_URL``: where the key's request budget is shared (Redis, PostgreSQL, ``local``); None: a file."""
    return os.environ.get(ENV_SHARED_URL, "").strip() or None


ENV_SIMULATOR_SCALE = "GROK_NB_SIMULATOR_SCALE"


def simulator_render_scale() -> float:
    """How large the embedded simulator draws its clips: 0.05–1 of the resolution asked (1 unless set)."""
    raw = os.environ.get(ENV_SIMULATOR_SCALE, "").strip()
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        scale = float("nan")
    if not 0.05 <= scale <= 1.0:
        raise ConfigurationError(f"{ENV_SIMULATOR_SCALE}={raw!r} is not a scale: use a number from 0.05 to 1 "
                                 "(1 draws clips at the resolution asked for), or unset it")
    return scale


def redact_url(url: str) -> str:
    """The URL with any password removed (``postgresql://ana:***@db/grok``), safe to show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def key_fingerprint(api_key: str) -> str:
    """A short, one-way name for a key, so shared state never holds the key itself."""
    return hashlib.sha256(b"grok_nb/key/" + api_key.encode()).hexdigest()[:24]
