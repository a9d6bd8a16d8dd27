"""`rdia report` and `rdia inspect`'s figures: reading a run folder, figures, one HTML page."""
