import asyncio
import io
import json
import os

import numpy as np
import pytest

from daemon.events import BadEvent
from daemon.sinks.local import DeadLetterFile, JsonLinesSink, StreamSink
from daemon.sinks.sink import ReaderGone
from daemon.snapshots import Eviction, Publication, SnapshotBatch
from tests.daemon.snapshot_intervals import interval_fields

AT = "2026-01-01T00:00:00.000Z"


def _publication(keys=("a", "ü"), evictions=(Eviction("gone", "ttl", AT),)) -> Publication:
    n = len(keys)
    learned = np.tile([0.25, 0.75], (n, 1))
    batch = SnapshotBatch(keys=list(keys), categories=[["x", "y"]] * len(keys), learned=learned, empirical=learned,
                          tv=np.zeros(n), kl=np.zeros(n), js=np.zeros(n), temperature=1.0,
                          steps=np.arange(n), events=np.arange(n) + 10, versions=np.ones(n, dtype=np.int64),
                          published_at=AT, **interval_fields(learned, np.arange(n) + 10))
    return Publication(batch, list(evictions)).encode()


def _expected(publication):
    return [json.loads(line) for line in publication.lines]


def test_json_lines_sink_appends_snapshots_and_eviction_records(tmp_path):
    path = tmp_path / "deep" / "dir" / "snapshots.jsonl"

    async def main():
        sink = JsonLinesSink(path)
        first, second = _publication(), _publication(keys=("b",), evictions=())
        await sink.publish(first)
        await sink.publish(second)
        await sink.aclose()
        return first, second

    first, second = asyncio.run(main())
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert written == _expected(first) + _expected(second)
    assert [r["key"] for r in written] == ["a", "ü", "gone", "b"]
    assert written[2] == {"key": "gone", "evicted": True, "reason": "ttl", "evicted_at": AT}
    assert path.read_bytes().endswith(b"\n")

    async def again():  # a restart appends to the file
        sink = JsonLinesSink(path)
        await sink.publish(_publication(keys=(), evictions=(Eviction("x", "max_keys", AT),)))
        await sink.aclose()

    asyncio.run(again())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5 and json.loads(lines[-1])["reason"] == "max_keys"


def test_stream_sink_writes_one_json_object_per_line():
    stream = io.StringIO()
    publication = _publication()

    async def main():
        sink = StreamSink(stream)
        await sink.publish(publication)
        await sink.publish(_publication(keys=(), evictions=()))  # nothing to say: nothing written
        await sink.aclose()

    asyncio.run(main())
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 3
    assert [json.loads(line) for line in text.splitlines()] == _expected(publication)
    assert json.loads(text.splitlines()[1])["key"] == "ü"
    assert json.loads(text.splitlines()[2])["evicted"] is True


def test_stream_sink_whose_reader_closed_the_pipe_raises_reader_gone_then_writes_to_the_null_device():
    read_end, write_end = os.pipe()
    stream = open(write_end, "w", encoding="utf-8")
    os.close(read_end)

    async def main():
        sink = StreamSink(stream)
        with pytest.raises(ReaderGone, match="stdout was closed by its reader"):
            await sink.publish(_publication())
        await sink.publish(_publication())  # the null device takes it
        await sink.aclose()

    asyncio.run(main())
    assert os.path.samestat(os.fstat(write_end), os.stat(os.devnull))
    stream.close()  # flushes without error


def test_dead_letter_file_keeps_the_raw_record_losslessly(tmp_path):
    path = tmp_path / "dead.jsonl"
    dead = DeadLetterFile(path)
    assert dead.write([BadEvent("not_json", "bad", b"{oops"), BadEvent("not_utf8", "bad", b"\xff\xfe"),
                       BadEvent("wrong_type", "bad", {"key": "k", "category": 1.5}, {"topic": "t", "offset": 3})],
                      AT) == 3
    asyncio.run(dead.aclose())
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0] == {"reason": "not_json", "detail": "bad", "origin": {}, "dead_lettered_at": AT, "raw": "{oops"}
    assert records[1]["raw_base64"] == "//4=" and "raw" not in records[1]
    assert records[2]["raw"] == {"key": "k", "category": 1.5} and records[2]["origin"] == {"topic": "t", "offset": 3}


class FakeKafkaProducer:
    """Stands in for ``AIOKafkaProducer``: records what is sent, acknowledges at once."""

    sent: list[tuple[str, bytes | None, bytes | None]] = []

    def __init__(self, **options) -> None:
        self.options = options

    async def start(self) -> None:
        pass

    async def send(self, topic, value=None, key=None, headers=None):
        FakeKafkaProducer.sent.append((topic, key, value))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def stop(self) -> None:
        pass


def test_kafka_sink_sends_snapshots_keyed_by_key_and_tombstones_for_evictions():
    from daemon.kafka.producer import Producer
    from daemon.settings import KafkaSourceSettings
    from daemon.sinks.kafka import KafkaSnapshotSink

    FakeKafkaProducer.sent = []
    publication = _publication()

    async def main():
        sink = KafkaSnapshotSink(Producer(KafkaSourceSettings(), enable_idempotence=False, timeout=5.0,
                                          producer_factory=FakeKafkaProducer), "learned")
        await sink.publish(publication)
        await sink.aclose()

    asyncio.run(main())
    sent = FakeKafkaProducer.sent
    assert [(topic, key) for topic, key, _ in sent] == [("learned", b"a"), ("learned", "ü".encode()),
                                                        ("learned", b"gone")]
    assert sent[2][2] is None                                        # the tombstone
    assert [json.loads(value) for _, _, value in sent[:2]] == _expected(publication)[:2]


def test_a_producer_that_failed_to_start_waits_out_its_backoff_before_starting_again():
    from aiokafka.errors import KafkaConnectionError

    from daemon.kafka.producer import Producer
    from daemon.settings import KafkaSourceSettings

    now, starts = [100.0], []

    class Unreachable(FakeKafkaProducer):
        async def start(self) -> None:
            starts.append(now[0])
            if len(starts) == 1:
                raise KafkaConnectionError("refused")

    async def main():
        producer = Producer(KafkaSourceSettings(retry_backoff_max=5.0), enable_idempotence=False, timeout=5.0,
                            producer_factory=Unreachable, clock=lambda: now[0])
        for _ in range(2):  # the failed start, then a send within its backoff: no second start
            try:
                await producer.send_all("t", [(b"k", b"v", [])])
                raise AssertionError("the send should fail")
            except KafkaConnectionError as error:
                message = str(error)
        assert starts == [100.0] and "next attempt in" in message and "refused" in message
        now[0] += 5.0  # past the longest backoff
        FakeKafkaProducer.sent = []
        await producer.send_all("t", [(b"k", b"v", [])])
        assert starts == [100.0, 105.0] and FakeKafkaProducer.sent == [("t", b"k", b"v")]
        await producer.close()

    asyncio.run(main())


def test_a_start_cut_short_by_a_stop_is_no_failure_the_next_send_starts_at_once():
    """A checkpoint cancelled at SIGTERM while its producer started must not delay the final one."""
    from daemon.kafka.producer import Producer
    from daemon.settings import KafkaSourceSettings

    starts, gate = [], None

    class Slow(FakeKafkaProducer):
        async def start(self) -> None:
            starts.append(len(starts))
            if len(starts) == 1:
                await gate.wait()  # never set: the first start hangs until cancelled

    async def main():
        nonlocal gate
        gate = asyncio.Event()
        producer = Producer(KafkaSourceSettings(retry_backoff_max=30.0), enable_idempotence=False, timeout=5.0,
                            producer_factory=Slow)
        first = asyncio.create_task(producer.send_all("t", [(b"k", b"v", [])]))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        FakeKafkaProducer.sent = []
        await producer.send_all("t", [(b"k", b"v2", [])])  # no backoff to wait out
        assert starts == [0, 1] and FakeKafkaProducer.sent == [("t", b"k", b"v2")]
        await producer.close()

    asyncio.run(main())


def test_retry_backs_off_until_the_deadline_then_raises_the_last_error():
    from aiokafka.errors import KafkaConnectionError

    from daemon.kafka.backoff import Backoff, retry

    now, waits, failures = [0.0], [], []

    async def attempt():
        raise KafkaConnectionError(f"refused at {now[0]:g}")

    async def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    async def main():
        await retry(attempt, Backoff(initial=1.0, maximum=1.0), deadline=3.0, clock=lambda: now[0], sleep=sleep,
                    on_failure=lambda error, wait: failures.append(str(error)))

    try:
        asyncio.run(main())
        raise AssertionError("retry should give up")
    except KafkaConnectionError:
        pass
    assert now[0] <= 3.0 and all(0 <= w <= 1.0 for w in waits) and len(failures) == len(waits) >= 1


def test_dead_letter_file_writes_off_the_event_loop_in_order_and_flush_waits_for_the_file(tmp_path, monkeypatch):
    import threading

    from daemon.sinks import local as sinks

    path, writers = tmp_path / "dead.jsonl", []
    real_record = sinks.dead_letter_record

    def recording(bad, at):
        writers.append(threading.current_thread().name)
        return real_record(bad, at)
    monkeypatch.setattr(sinks, "dead_letter_record", recording)

    async def main():
        dead = DeadLetterFile(path, max_pending=5)
        for i in range(10):
            assert dead.write([BadEvent("not_json", f"bad {i}", b"x"), BadEvent("empty", f"bad {i}", b"")], AT) == 2
        await dead.backpressure()
        await dead.flush()
        written = [json.loads(line)["detail"] for line in path.read_text().splitlines()]
        await dead.aclose()
        return written

    written = asyncio.run(main())
    assert written == [f"bad {i}" for i in range(10) for _ in range(2)]
    assert writers and threading.main_thread().name not in writers


def test_a_failed_dead_letter_write_is_raised_by_the_next_flush(tmp_path):
    async def main():
        dead = DeadLetterFile(tmp_path / "dead.jsonl")
        dead._sink.close()  # the file cannot be written any more
        dead.write([BadEvent("empty", "bad", b"")], AT)
        try:
            await dead.flush()
            raise AssertionError("flush should raise")
        except ValueError:  # a closed file's error
            pass
        await dead.aclose()

    asyncio.run(main())
