"""Event time with librdkafka's record timestamps, against the real broker: lateness judged on
CreateTimes, and forgetting in event time that does not depend on how the topic was read."""
from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np

from tests.clients import librdkafka
from tests.clients.librdkafka import Message
from tests.daemon.process import Daemon
from tests.daemon.sources.kafka.client_runs import (LABELS, TRUTH, create_topics, daemon_flags, latest_snapshots,
                                                     random_events, records_of, stop_cleanly, unique_name,
                                                     wait_counted)


def test_librdkafka_create_times_are_the_event_times_and_events_past_the_lateness_are_dead_lettered(kafka_broker,
                                                                                                     tmp_path):
    """One partition, in this order: on time, 30 s older (within a lateness of 60 s), 120 s older
    (late), then 200 events on time. Exactly the late record is dead-lettered, as ``late``."""
    bootstrap = kafka_broker.bootstrap
    events, learned, dead = unique_name("times"), unique_name("times-learned"), unique_name("times-dead")

    create_topics(bootstrap, (events, learned, dead), 1)
    now = int(time.time() * 1000)
    good = json.dumps({"category": "a"}).encode()
    stamped = [Message(b"clock", good, timestamp=t) for t in (now, now - 30_000, now - 120_000)]
    stamped += [Message(b"clock", m.value, timestamp=now + 1 + i) for i, m in enumerate(random_events(["clock"], 200, seed=40))]
    placed = librdkafka.produce(bootstrap, events, stamped)
    daemon = Daemon(tmp_path, *daemon_flags(bootstrap, [events], learned, dead, "--model.allowed_lateness", "60s"))
    try:
        wait_counted(daemon, {"clock": 202})
    finally:
        stop_cleanly(daemon)
    assert latest_snapshots(list(daemon.snapshots))["clock"]["events"] == 202
    letters = records_of(bootstrap, dead)
    assert [(int(dict(r.headers)["gumbeld.source.offset"]), dict(r.headers)["gumbeld.reason"]) for r in letters] == [
        (placed[2][1], b"late")]


def test_a_topic_replayed_in_polls_of_another_size_learns_the_same_histograms_in_event_time(kafka_broker, tmp_path):
    """Two hours of librdkafka CreateTimes (out of order by up to 20 s), three keys at rates 25×
    apart, forgetting with a half-life of 5 minutes of event time: one instance reads polls of
    1,000 records, another of 7. Their final snapshots agree on every key's histogram (to the
    float32 rounding of the published values), mass and watermark. (Without the pooled prior, whose
    fits depend on when they ran, the mass is the histogram's alone.)"""
    bootstrap = kafka_broker.bootstrap
    events, learned, dead = unique_name("replay"), unique_name("replay-learned"), unique_name("replay-dead")
    create_topics(bootstrap, (events, learned, dead), 1)
    rng = np.random.default_rng(41)
    start, n = int(time.time() * 1000) - 7_200_000, 3000
    keys = rng.choice(["fast", "middle", "slow"], size=n, p=[25 / 31, 5 / 31, 1 / 31])
    stamps = start + np.sort(rng.integers(0, 7_200_000, n)) + rng.integers(-20_000, 20_000, n)
    sent = [Message(key.encode(), json.dumps({"category": LABELS[c]}).encode(), timestamp=int(t))
            for key, c, t in zip(keys, rng.choice(len(LABELS), size=n, p=TRUTH), stamps)]
    librdkafka.produce(bootstrap, events, sent)
    expected = dict(Counter(str(k) for k in keys))
    finals = []
    for polls in ("1000", "7"):
        daemon = Daemon(tmp_path / polls, *daemon_flags(bootstrap, [events], learned, dead, "--model.half_life", "5m",
                                                   "--model.allowed_lateness", "60s", "--model.prior", "none",
                                                   "--source.kafka.max_poll_records", polls))
        try:
            wait_counted(daemon, expected)
        finally:
            stop_cleanly(daemon)
        finals.append(latest_snapshots(list(daemon.snapshots)))
    one, other = finals
    assert {key: s["events"] for key, s in one.items()} == {key: s["events"] for key, s in other.items()} == expected
    for key in expected:
        assert one[key]["as_of"] == other[key]["as_of"] is not None
        np.testing.assert_allclose(one[key]["empirical"], other[key]["empirical"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(one[key]["effective_events"], other[key]["effective_events"], rtol=1e-6)
    # forgetting in time: the slow key weighs far fewer events than it counted, as the fast one does
    assert one["slow"]["effective_events"] < 0.5 * expected["slow"]
