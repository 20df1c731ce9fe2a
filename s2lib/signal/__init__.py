"""Signal processing: waveform kernels (pedestal, S1/S2 detection, integration), the X-ray selection,
S1-S2 timing and the one-pass integration engine."""
