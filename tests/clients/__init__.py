"""Kafka clients of other ecosystems — librdkafka (``confluent_kafka``) and KafkaJS on Node.js — that
the tests run against gumbeld, as producers of its events and readers of its snapshots."""
