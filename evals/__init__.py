"""Evals: agreement of draftmark's marks with human markers (built on ``service.mark_essay``)."""
