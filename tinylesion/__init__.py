"""tinylesion: a from-scratch deep-learning engine for skin-lesion classification."""
