"""Validation: closure of the whole chain against simulator truth, estimator coverage, the Validation chapter."""
