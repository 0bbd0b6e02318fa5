"""The study's figures, one module per kind, each drawn with matplotlib's Agg backend (no display, no torch).

Every figure function returns the ``Figure`` records it wrote (name, title, caption, file per format) and a list of
notes saying which figures could not be drawn yet and why, so a partial study still gets a report.
"""
