"""The learning side of the service: the training thread's owner, the learners, the key table and key supports."""
