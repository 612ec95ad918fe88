"""Event sources: asynchronous iterators of :class:`daemon.events.EventBatch`."""
