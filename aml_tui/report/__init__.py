"""Reports: a run, a comparison of runs, or a sweep as one self-contained HTML file (or
Markdown with its figures beside it), made from what the run folders hold.

gather.py reads the runs (and evaluates their checkpoints), figures.py draws with
matplotlib, sections.py and sweep.py lay out a Document of plain blocks, html.py and
markdown.py write it, limits.py keeps it small whatever the runs (long curves thinned, long
tables cut, each saying so), output.py names the file and writes it (never over anything
but a regular file). Nothing here is imported until a report is asked for: evaluation loads
torch, figures load matplotlib.
"""
