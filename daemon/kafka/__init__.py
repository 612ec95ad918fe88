"""Kafka: the source of events, the learned-distribution sink, and the dead-letter topic."""
