"""``gumbeld watch``: a live terminal view of the learned distributions.

- :mod:`.state` — what is shown: the latest snapshot per key, the keys chosen (top N by events,
  ``--key`` patterns, the ``/`` filter), the page, the malformed count, the connection; pure.
- :mod:`.render` — rich renderables drawn from a state.
- :mod:`.keyboard` — keys read from the terminal (cbreak mode), without blocking the event loop.
- :mod:`.sources` — the learned-distribution topic (reconnecting with backoff) or JSON lines.
- :mod:`.command` — the command line and the loop that ties them together.
"""
