"""Schema-registry framing of Kafka values (``source.kafka.value_framing = "confluent"``).

Confluent's serializers (JSON Schema, Avro, Protobuf) write each value as a 5-byte frame and then
the payload: the magic byte ``0`` and the schema id as a 4-byte big-endian integer. gumbeld does
not look the schema up; it strips the frame and decodes the payload in ``source.kafka.value_format``.

>>> value = b"\\x00\\x00\\x00\\x01\\x2a" + b'{"category": "red"}'
>>> schema_id(value), payloads([value])
(298, [b'{"category": "red"}'])
>>> frame_problem(b"\\x00\\x01"), frame_problem(b'{"category": "red"}')
('3 bytes short of the 5-byte schema-registry frame (got 2 bytes)', "magic byte 0x7b ('{'), expected 0x00: the value is not schema-registry framed")
"""
from __future__ import annotations

from operator import itemgetter
from typing import Sequence

FRAME_BYTES = 5  # magic byte 0, then the schema id as 4 bytes, big-endian
_magic = itemgetter(0)
_payload = itemgetter(slice(FRAME_BYTES, None))


def payloads(values: Sequence[bytes]) -> list[bytes] | None:
    """What follows the frame of each (non-empty) value, if every value is framed and has something
    after its frame; ``None`` if any has not (then :func:`frame_problem` says which and why).
    Checked and sliced at C speed: one ``map`` each, no loop in Python."""
    if any(map(_magic, values)):  # a magic byte other than 0
        return None
    unframed = list(map(_payload, values))
    return unframed if all(unframed) else None  # an empty payload: the value was the frame or less


def frame_problem(value: bytes) -> str | None:
    """Why ``value`` is not framed (a detail for the dead letter), or ``None`` if it is."""
    if len(value) < FRAME_BYTES:
        return f"{FRAME_BYTES - len(value)} bytes short of the {FRAME_BYTES}-byte schema-registry frame " \
               f"(got {len(value)} bytes)"
    if value[0] != 0:
        shown = f" ({chr(value[0])!r})" if 0x20 <= value[0] < 0x7f else ""
        return f"magic byte 0x{value[0]:02x}{shown}, expected 0x00: the value is not schema-registry framed"
    return None


def schema_id(value: bytes) -> int:
    """The schema id in a framed value's header."""
    return int.from_bytes(value[1:FRAME_BYTES], "big")
