"""Data: datasets, splits, class imbalance, transforms and the streaming loader."""
