import os
import signal

import pytest

from auxbench.training.checkpoint import StoppedNow, preemption_requests


def test_a_first_sigterm_is_recorded_and_a_second_stops_at_once(caplog):
    reached = []
    with pytest.raises(StoppedNow, match="SIGTERM"), preemption_requests() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the first")
        assert stop == [signal.SIGTERM]
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the second")  # not reached: the handler raised
    assert reached == ["after the first"]
    assert "send it again or press Ctrl-C to stop now" in caplog.text


def test_ctrl_c_stops_at_once_and_the_previous_handlers_come_back():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(StoppedNow, match="SIGINT"), preemption_requests():
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_stopped_now_names_the_checkpoint_that_stays():
    error = StoppedNow("SIGINT", 3, "out/checkpoint.pt")
    assert str(error) == (
        "stopped at once on SIGINT during epoch 4; checkpoint of epoch 3: out/checkpoint.pt"
    )
    assert "no checkpoint written" in str(StoppedNow("SIGTERM"))
