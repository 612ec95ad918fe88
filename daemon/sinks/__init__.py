"""Where snapshots and dead letters go: standard output, JSON-lines files and Kafka topics."""
