"""``python -m ddbtrail.cli``."""

from ddbtrail.cli import main

main()
