"""``nnparity check``: verify a learner's own implementation against the reference and say what is wrong with it."""
