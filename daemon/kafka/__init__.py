"""Kafka: the source of events, the learned-distribution sink, the dead-letter topic, and a reader
of partitions up to their end (:mod:`daemon.kafka.read`)."""
