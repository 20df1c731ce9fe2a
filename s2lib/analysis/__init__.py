"""The analysis stages of the seed API that orchestrate and draw (prepare, integrate, fit, calibrate), the
figures, and the notebook display helpers."""
