"""Capture: stream batches into rows for a delivery sink, and the jobs that move items.

``batch`` is the capture Lambda's code path; ``runner`` stands in for Lambda's event source
mapping on one machine; ``backfill``, ``replicate``, ``copy`` and ``redrive`` are the jobs.
"""

from ddbtrail.capture.batch import CaptureSettings, capture_batch

__all__ = ["CaptureSettings", "capture_batch"]
