"""ddbtrail: item-level audit trail and change lake for Amazon DynamoDB."""

__version__ = "0.1.0"
