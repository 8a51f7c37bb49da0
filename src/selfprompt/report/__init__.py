"""Reports: one self-contained HTML page and a markdown summary of a run's results."""
