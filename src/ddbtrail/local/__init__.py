"""Local and embedded: moto's server, the stream runner and the local delivery stream."""

# Submodules: ``from ddbtrail.local import embedded``; moto loads only when one is used.
__all__ = ["demo", "embedded"]
