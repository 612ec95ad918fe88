"""daemon.loops: the fixed-rate timer's schedule, run on simulated durations (no clock in the test)."""
from daemon.loops import next_beat


def _starts(durations: list[float], interval: float = 1.0) -> list[float]:
    """The start times of actions taking ``durations`` in turn, the first due at ``interval``."""
    due, caught_up, starts = interval, False, []
    for duration in durations:
        starts.append(due)
        due, caught_up = next_beat(due, due + duration, interval, caught_up)
    return starts


def test_actions_in_time_keep_the_rate_and_their_durations_do_not_add_up():
    assert _starts([0.3, 0.9, 0.1, 0.5]) == [1.0, 2.0, 3.0, 4.0]


def test_one_overrun_is_followed_at_once_and_the_rate_resumes_from_there():
    starts = _starts([1.05, 0.2, 0.2])
    assert [round(b - a, 2) for a, b in zip(starts, starts[1:])] == [1.05, 1.0]


def test_a_sustained_overload_skips_beats_after_each_catch_up():
    """Every action takes 1.5 intervals: pairs back to back, then a pause to the next beat (3 s of
    action in every 3.5 s), rather than one action after another without a pause."""
    starts = _starts([1.5] * 6)
    gaps = [round(b - a, 2) for a, b in zip(starts, starts[1:])]
    assert gaps == [1.5, 2.0, 1.5, 2.0, 1.5]
