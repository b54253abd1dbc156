"""Warnings that training expects, silenced only while a fit runs (the LightningModule's
``on_fit_start`` / ``on_fit_end``), never process-wide at import."""

from __future__ import annotations

import warnings

#: messages (regular expressions) of the expected warnings, with why they are expected
EXPECTED = (
    # the frozen CLIP stays in eval mode during training on purpose (VIModule.train)
    r"Found \d+ module\(s\) in eval mode",
)


class ExpectedWarnings:
    """The filters of :data:`EXPECTED`, active between :meth:`enter` and :meth:`exit` (the
    previous filters come back on exit)."""

    def __init__(self) -> None:
        self._ctx: warnings.catch_warnings[None] | None = None

    def enter(self) -> None:
        if self._ctx is not None:
            return
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        for message in EXPECTED:
            warnings.filterwarnings("ignore", message=message)

    def exit(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None
