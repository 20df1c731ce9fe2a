"""Input/output: Tektronix WFM files, atomic artifact writers and the S2/X-ray/timing stores, run manifests."""
