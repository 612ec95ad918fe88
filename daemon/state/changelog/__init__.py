"""Per-key state on a compacted Kafka topic: rows written at checkpoints, restored on assignment."""
