import os
import signal

import pytest

from tunesmith.train.signals import GracefulStop, StopRequested


def test_outside_training_a_signal_stops_at_once_with_the_shell_exit_code() -> None:
    with GracefulStop(), pytest.raises(StopRequested) as stopped:
        os.kill(os.getpid(), signal.SIGTERM)
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143
    assert StopRequested(signal.SIGINT).exit_code == 130


def test_during_training_the_first_signal_is_deferred_and_a_second_stops_at_once() -> None:
    with GracefulStop() as stop, stop.deferred():
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.signum == signal.SIGINT
        with pytest.raises(StopRequested):
            os.kill(os.getpid(), signal.SIGTERM)


def test_previous_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with GracefulStop():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
