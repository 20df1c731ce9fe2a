"""The run simulator: WFM files with known truth (signal model, truth document)."""
