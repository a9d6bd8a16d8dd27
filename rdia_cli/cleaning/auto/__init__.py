"""``--strategy auto``: cross-validated choice among cleanings of the training set, the
training set plus the clean set, the clean set alone and blends (see ``clean``)."""
