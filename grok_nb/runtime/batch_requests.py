# Written by scripts/make_sync.py from client.py: do not edit, run the script.
"""The batch builder's methods: the arguments and checks of the client's job methods, nothing sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..api.models import with_allowed_values
from ..api.validation import DEFAULT_MODEL
from ..jobs.results import Run


class BatchRequests:
    """Adds requests to a batch with the same arguments (and checks) as ``client.generate``, ``edit`` and ``extend``."""

    def _add(self, kind: str, arguments: dict[str, Any]) -> Run:
        raise NotImplementedError

    @with_allowed_values("generate")
    def generate(
        self,
        prompt: str | None = None,
        *,
        image: Any = None,
        reference_images: Sequence[Any] | None = None,
        duration: int | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        model: str = DEFAULT_MODEL,
        generate_audio: bool | None = None,
        user: str | None = None,
        last_frame: Any = None,
        keyframes: Sequence[dict[str, Any]] | None = None,
        reference_audios: Sequence[str | dict[str, Any]] | None = None,
        tags: Sequence[str] = (),
    ) -> Run:
        """Add a request to the batch, with the arguments and checks of ``client.generate``.

        Text→video, image→video (``image`` is the first frame) or reference→video (``reference_images``).

        On grok-imagine-video-1.5 also ``last_frame`` (the final frame), ``keyframes`` (up to 4
        ``{"image": ..., "timestamp_s": n}``) and ``reference_audios`` (up to 3 voice ids, ``<AUDIO_n>`` in the prompt).
        """
        return self._add("generate", {
            "prompt": prompt,
            "image": image,
            "reference_images": reference_images,
            "duration": duration,
            "resolution": resolution,
            "aspect_ratio": aspect_ratio,
            "model": model,
            "generate_audio": generate_audio,
            "user": user,
            "last_frame": last_frame,
            "keyframes": keyframes,
            "reference_audios": reference_audios,
            "tags": tags,
        })

    @with_allowed_values("edit")
    def edit(
        self,
        video: Any,
        prompt: str,
        *,
        model: str = DEFAULT_MODEL,
        user: str | None = None,
        tags: Sequence[str] = (),
        **unsupported: Any,
    ) -> Run:
        """Add a request to the batch, with the arguments and checks of ``client.edit``.

        Change a video by prompt.

        ``video`` is a Run, a request id, a URL, a local MP4 (path or bytes) or a file id.
        """
        return self._add("edit", {
            "video": video,
            "prompt": prompt,
            "model": model,
            "user": user,
            "tags": tags,
            **unsupported,
        })

    @with_allowed_values("extend")
    def extend(
        self,
        video: Any,
        prompt: str,
        *,
        duration: int | None = None,
        model: str = DEFAULT_MODEL,
        tags: Sequence[str] = (),
        **unsupported: Any,
    ) -> Run:
        """Add a request to the batch, with the arguments and checks of ``client.extend``.

        Continue a video (same inputs as edit); ``duration`` is the length of the added part only.
        """
        return self._add("extend", {
            "video": video,
            "prompt": prompt,
            "duration": duration,
            "model": model,
            "tags": tags,
            **unsupported,
        })
