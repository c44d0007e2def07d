"""Training: the loop, the supervised and multi-domain trainers, checkpoints."""
