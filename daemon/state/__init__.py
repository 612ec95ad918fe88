"""State in one place: the local checkpoint, the checkpoint protocol, resuming, the state topics and the hand-over."""
