"""Ctrl-C and `kill` (SIGINT, SIGTERM) stop a run gracefully instead of killing it mid-write.

While training, a signal only raises a flag: the loop finishes the optimizer step it is
in, writes a checkpoint and then stops. Anywhere else (reading data, the final
evaluation) there is nothing to save, so the run stops at once. A second signal always
stops at once, for the user who does not want to wait for the checkpoint.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopRequested(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt, so `except Exception` lets it pass."""

    def __init__(self, signum: int, checkpoint: Path | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        # The checkpoint written before stopping, if training was under way.
        self.checkpoint = checkpoint

    @property
    def exit_code(self) -> int:
        # The shell's convention for "killed by signal N": 130 for SIGINT, 143 for SIGTERM.
        return 128 + self.signum


class GracefulStop:
    """Install the handlers for the duration of a `with` block; `deferred()` marks the training loop."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._deferring = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> GracefulStop:
        # Python only lets the main thread install handlers; elsewhere signals keep their defaults.
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring and self.signum is None:
            self.signum = signum
            return
        raise StopRequested(signum)
