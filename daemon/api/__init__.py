"""``/v1``: what gumbeld learned, asked for one key at a time (see README, "Ask it")."""
