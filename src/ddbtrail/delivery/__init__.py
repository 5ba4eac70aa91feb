"""Delivery: Firehose (PutRecordBatch) and the local delivery stream that stands in for it."""
