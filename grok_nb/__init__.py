"""grok_nb: xAI's Grok Imagine video API, made pleasant from Jupyter."""

from typing import Any

from ._version import __version__
from .api.judge import Judgement  # noqa: E402
from .api.measure import Measures, measure  # noqa: E402
from .api.pricing import PRICE_TABLE, PRICES_AS_OF, CostEstimate  # noqa: E402
from .client import AsyncClient  # noqa: E402
from .errors import (  # noqa: E402
    APIError,
    AuthenticationError,
    BadRequestError,
    BatchWaitTimeout,
    BudgetExceeded,
    ClientClosedError,
    ConfigurationError,
    ConfirmationRequired,
    ConnectionFailed,
    DeadlineExceeded,
    DownloadError,
    GrokError,
    JobCancelledError,
    JobError,
    JobExpiredError,
    JobFailedError,
    JudgeError,
    MeasureError,
    ModeratedError,
    NotFoundError,
    NoVideoError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    SubmitUncertainError,
    ValidationError,
)
from .jobs.results import JobHandle, Run  # noqa: E402
from .jobs.status import Status  # noqa: E402
from .runtime.judge import JudgedPair  # noqa: E402
from .sync_client import Client  # noqa: E402


def __getattr__(name: str) -> Any:
    # Studio needs ipywidgets: imported on first use, so the client alone never loads widgets.
    if name == "Studio":
        from .notebook import Studio  # heavy: ipywidgets, anywidget, matplotlib

        return Studio
    raise AttributeError(f"module 'grok_nb' has no attribute {name!r}")

__all__ = [
    "APIError", "AsyncClient", "AuthenticationError", "BadRequestError", "BatchWaitTimeout", "BudgetExceeded", "Client",
    "ClientClosedError", "ConfigurationError", "ConfirmationRequired", "ConnectionFailed",
    "CostEstimate", "DeadlineExceeded", "DownloadError", "GrokError", "JobCancelledError", "JobError",
    "JobExpiredError", "JobFailedError", "JobHandle", "JudgeError", "JudgedPair", "Judgement", "MeasureError",
    "Measures", "ModeratedError", "NoVideoError",
    "NotFoundError", "PRICES_AS_OF", "PRICE_TABLE",
    "PermissionDeniedError", "RateLimitError", "Run", "ServerError", "Status", "Studio", "SubmitUncertainError",
    "ValidationError",
    "__version__", "measure",
]
