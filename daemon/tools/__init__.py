"""The user's tools beside the service: watch, report, the typed client, the load generator and the benchmarks."""
