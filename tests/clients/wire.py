"""What a topic holds on the wire: its record batches as the broker serves them, undecoded.

Consumers hide how records were written: they decompress batches and skip control records. This
reads the raw batches with a plain Fetch request (aiokafka's protocol layer), so a test can check
that a producer's batches really are compressed with its codec, or transactional with their
commit markers beside them.
"""
from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

CODECS = {DefaultRecordBatch.CODEC_NONE: "none", DefaultRecordBatch.CODEC_GZIP: "gzip",
          DefaultRecordBatch.CODEC_SNAPPY: "snappy", DefaultRecordBatch.CODEC_LZ4: "lz4",
          DefaultRecordBatch.CODEC_ZSTD: "zstd"}
READ_COMMITTED = 1
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Batch:
    partition: int
    base_offset: int
    next_offset: int
    codec: str
    transactional: bool
    control: bool
    producer_id: int


async def batches(bootstrap: str, topic: str, partitions: list[int]) -> list[Batch]:
    """Every record batch of ``partitions`` of ``topic``, from offset 0 to the high watermark."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    found: list[Batch] = []
    try:
        await client._wait_on_metadata(topic)
        for partition in partitions:
            node = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            offset, highwater = 0, None
            while highwater is None or offset < highwater:
                request = FetchRequest(100, 1, MAX_BYTES, READ_COMMITTED, [(topic, [(partition, offset, MAX_BYTES)])])
                response = await client.send(node, request)
                [(_, [(_, error, highwater, *_, data)])] = response.topics
                assert error == 0, f"fetch of {topic}:{partition} at {offset} failed with error code {error}"
                records = MemoryRecords(data) if data else None
                read = 0
                while records is not None and (batch := records.next_batch()) is not None:
                    found.append(Batch(partition, batch.base_offset, batch.next_offset, CODECS[batch.compression_type],
                                       batch.is_transactional, batch.is_control_batch, batch.producer_id))
                    offset, read = batch.next_offset, read + 1
                assert read or offset >= highwater, f"no batch at offset {offset} of {topic}:{partition}"
    finally:
        await client.close()
    return found
