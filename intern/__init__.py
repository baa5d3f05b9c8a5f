"""intern: an autonomous post-training lab."""
