"""The learned generator: features, networks, training data and checkpoints (needs torch)."""
