"""Calibration: g_S2 from the X-rays (or external sources) and recombination fits; numbers only (the figures
are drawn by :mod:`s2lib.analysis`)."""
