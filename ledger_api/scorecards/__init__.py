"""Public transparency scorecards of a campaign and a charity: figures that anyone can
recompute from the CSV export (scripts/scorecard_from_csv.py does, with no code of ours)."""
