"""The report runner (papermill), its stage cache, run locks, the book assembly and the fault-injection checks."""
