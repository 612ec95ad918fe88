"""Event times, durations and watermarks (daemon.event_time)."""
import numpy as np
import pytest

from daemon.event_time import NO_TIME, BadTime, Watermarks, event_time_ms, parse_duration


@pytest.mark.parametrize("text, seconds", [("500ms", 0.5), ("90s", 90.0), ("30m", 1800.0), ("1.5h", 5400.0),
                                           ("7d", 604_800.0), (" 2 s ", 2.0), ("90", 90.0), (0, 0.0), (2.5, 2.5)])
def test_durations_in_seconds_or_with_a_unit(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "-1s", "1w", "", "1e3s", True, None, -3, float("inf")])
def test_a_duration_that_is_not_one_is_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("value, ms", [("2026-12-07T10:00:00Z", 1_796_637_600_000),
                                       ("2026-12-07T11:00:00+01:00", 1_796_637_600_000),
                                       ("2026-12-07T10:00:00.123456Z", 1_796_637_600_123),
                                       (1_796_637_600_000, 1_796_637_600_000), (1.5e12, 1_500_000_000_000), (0, 0)])
def test_event_times_from_rfc_3339_or_epoch_milliseconds(value, ms):
    assert event_time_ms(value) == ms


@pytest.mark.parametrize("bad, says", [("2026-12-07T10:00:00", "no UTC offset"), ("yesterday", "not an RFC 3339"),
                                       (True, "got bool"), (None, "got NoneType"), (float("nan"), "not a time"),
                                       (1e20, "outside the years"), ({"t": 1}, "got dict")])
def test_a_time_that_cannot_be_read_says_why(bad, says):
    with pytest.raises(BadTime, match=says):
        event_time_ms(bad)


def test_an_event_is_late_when_older_than_its_keys_newest_by_more_than_the_lateness():
    marks = Watermarks(lateness_ms=100)
    rows, times = np.array([0, 1, 0, 0, 1, 0]), np.array([1000, 50, 950, 899, 51, 900])
    assert marks.admit(rows, times).tolist() == [True, True, True, False, True, True]  # 899 < 1000 − 100
    assert marks.newest(np.array([0, 1])).tolist() == [1000, 51]
    assert marks.admit(np.array([1, 0]), np.array([-49, 899])).tolist() == [True, False]  # across batches too


def test_without_a_lateness_no_event_is_late():
    marks = Watermarks(lateness_ms=None)
    assert marks.admit(np.array([3, 3, 3]), np.array([10, 5, 7])).all()
    assert marks.newest(np.array([3, 0])).tolist() == [10, NO_TIME]  # the newest times are kept all the same


def test_whether_an_event_is_late_does_not_depend_on_how_the_stream_is_batched():
    """Fixed seed: 5,000 events of 20 keys, times out of order by up to ±2 s, lateness 1 s."""
    rng = np.random.default_rng(0)
    rows = rng.integers(20, size=5000)
    times = (np.arange(5000) * 10 + rng.integers(-2000, 2000, size=5000)).astype(np.int64)
    whole = Watermarks(1000).admit(rows, times)
    assert 0.05 < 1 - whole.mean() < 0.5  # some are late, most are not
    for seed in range(3):
        cuts = np.sort(np.random.default_rng(seed).choice(np.arange(1, 5000), size=40, replace=False))
        marks = Watermarks(1000)
        pieces = [marks.admit(r, t) for r, t in zip(np.split(rows, cuts), np.split(times, cuts))]
        assert np.array_equal(np.concatenate(pieces), whole)


def test_a_row_given_to_a_new_key_starts_without_a_time():
    marks = Watermarks(lateness_ms=0)
    marks.admit(np.array([2]), np.array([5000]))
    marks.forget([2, 99])
    assert marks.admit(np.array([2]), np.array([10])).tolist() == [True]
