"""Searches: Optuna asks each trial's settings and prunes, the sweep process being its only
client (ask-and-tell); its storage is a journal file in the sweep's folder.

plan.py makes a search sweep from ranges and lists, study.py wraps the Optuna study, and
driver.py decides, from the run folders and the study alone, which run trains next and what
the verdict on each epoch is: how a run's process was started is none of its business.
"""
