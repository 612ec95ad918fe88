"""Publishing: a sink that fails to take a publication gets it again with the next one, and at
shutdown, with a few more attempts."""
import asyncio
import json

from daemon.service import Service
from tests.daemon.in_process import RecordingSink, ScriptedSource, service_settings
from tests.daemon.serving import until


async def test_a_snapshot_a_sink_failed_to_take_reaches_it_with_the_next_publish(tmp_path):
    failures = []

    async def fail_the_first_snapshot_of_a(publication) -> None:
        if b"a" in publication.keys and not failures:
            failures.append(publication)
            raise OSError(28, "No space left on device")

    good, flaky = RecordingSink(), RecordingSink(on_publish=fail_the_first_snapshot_of_a)
    good.name, flaky.name = "good", "flaky"
    source = ScriptedSource()
    # publish_tolerance 1: key a is published once, for its events, and never again for training alone
    settings = service_settings(tmp_path, publish_tolerance=1.0, model={"n_categories": 5})
    service = Service(settings, sinks=[good, flaky], source=source)
    task = asyncio.create_task(service.serve())
    try:
        await until(task, lambda: service.training is not None, 30, "startup")
        source.push("a", [0, 1, 2, 3, 4] * 40)
        await until(task, lambda: any(r["key"] == "a" for r in flaky.records), 30, "a at the flaky sink")
        assert failures, "the flaky sink never failed"
        delivered = [r for r in flaky.records if r["key"] == "a"]
        assert delivered[0]["events"] == 200
        assert [r["version"] for r in good.records if r["key"] == "a"][:1] == [delivered[0]["version"]]
        assert "flaky" not in service.publisher.undelivered  # taken: nothing more owed
    finally:
        service.stopping.set()
        assert await asyncio.wait_for(task, 10) == 0


async def _stopped_once_a_is_counted(tmp_path, sink, **settings) -> int:
    """A service publishing to ``sink`` once a minute (so the publish at shutdown is the only one
    after the events), stopped once key a's events are counted; returns its exit code."""
    source = ScriptedSource()
    service = Service(service_settings(tmp_path, publish_interval=60.0, model={"n_categories": 5}, **settings),
                      sinks=[sink], source=source)
    task = asyncio.create_task(service.serve())
    await until(task, lambda: service.training is not None, 30, "startup")
    source.push("a", [0, 1, 2, 3, 4] * 40)
    await until(task, lambda: "a" in service.training.keys, 30, "the events of a counted")
    service.stopping.set()
    return await asyncio.wait_for(task, 30)


async def test_the_final_publish_offers_what_a_sink_failed_to_take_again_before_the_service_stops(tmp_path):
    failures = []

    async def fail_until_three_publishes_failed(publication) -> None:
        if len(failures) < 3:
            failures.append(publication)
            raise OSError(5, "Input/output error")

    flaky = RecordingSink(on_publish=fail_until_three_publishes_failed)
    flaky.name = "flaky"
    assert await _stopped_once_a_is_counted(tmp_path, flaky) == 0
    assert len(failures) == 3 and [r["key"] for r in flaky.records] == ["a"]  # the fourth attempt took it


async def _stopped_while_slow_takes_a(tmp_path, slow, taking: asyncio.Event) -> RecordingSink:
    """A service publishing to a fast sink, then ``slow``, stopped once ``slow`` is taking key a's
    snapshot (``taking``); returns the fast sink. publish_tolerance 1: the final publish has nothing
    new of a, so a reaches ``slow`` then only as what it owes."""
    fast = RecordingSink()
    fast.name = "fast"
    source = ScriptedSource()
    settings = service_settings(tmp_path, publish_interval=0.2, publish_tolerance=1.0, model={"n_categories": 5})
    service = Service(settings, sinks=[fast, slow], source=source)
    task = asyncio.create_task(service.serve())
    await until(task, lambda: service.training is not None, 30, "startup")
    source.push("a", [0, 1, 2, 3, 4] * 40)
    await until(task, lambda: taking.is_set() and any(r["key"] == "a" for r in fast.records), 30,
                "a published to the fast sink, being taken by the slow one")
    service.stopping.set()
    assert await asyncio.wait_for(task, 30) == 0
    return fast


async def test_a_publish_cancelled_by_the_stop_is_delivered_by_the_final_publish(tmp_path):
    holding, released = asyncio.Event(), asyncio.Event()

    async def hold_the_first_publication(publication) -> None:
        if not holding.is_set():
            holding.set()
            await released.wait()  # never set: the stop cancels the publish here

    slow = RecordingSink(on_publish=hold_the_first_publication)
    slow.name = "slow"
    await _stopped_while_slow_takes_a(tmp_path, slow, holding)
    assert [r["key"] for r in slow.records] == ["a"] and slow.records[0]["events"] == 200


class _SendsThenWaitsForAcks(RecordingSink):
    """Like a Kafka sink: the messages are on their way before it waits (here 0.5 s) for the acknowledgements."""

    name = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.taking = asyncio.Event()

    async def publish(self, publication) -> None:
        self.records += [json.loads(line) for line in publication.lines]
        if not self.taking.is_set():
            self.taking.set()
            await asyncio.sleep(0.5)  # well within the grace the stop gives a delivery under way


async def test_a_sink_taking_a_publication_when_the_stop_comes_finishes_it_and_is_not_sent_it_twice(tmp_path):
    slow = _SendsThenWaitsForAcks()
    fast = await _stopped_while_slow_takes_a(tmp_path, slow, slow.taking)
    assert [r["version"] for r in slow.records if r["key"] == "a"] == [r["version"] for r in fast.records if r["key"] == "a"]
    assert len([r for r in slow.records if r["key"] == "a"]) == 1


async def test_a_final_publish_that_outlasts_the_shutdown_timeout_is_cut_short_with_exit_1(tmp_path, caplog):
    async def never_finish(publication) -> None:
        await asyncio.Event().wait()

    stuck = RecordingSink(on_publish=never_finish)
    stuck.name = "stuck"
    assert await _stopped_once_a_is_counted(tmp_path, stuck, shutdown_timeout=1.0) == 1  # said, not raised
    assert "took longer than shutdown_timeout (1 s)" in caplog.text
