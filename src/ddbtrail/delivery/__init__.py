"""Delivery: the ``Sink`` protocol capture writes to, and its targets: Firehose
(PutRecordBatch) and the local delivery stream that stands in for it."""

from ddbtrail.delivery.sink import DeliveryReport, EncodedRow, Sink

__all__ = ["DeliveryReport", "EncodedRow", "Sink"]
