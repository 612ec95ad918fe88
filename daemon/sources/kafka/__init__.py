"""The Kafka source: consuming events in a consumer group, decoding records, key ownership and rebalances."""
