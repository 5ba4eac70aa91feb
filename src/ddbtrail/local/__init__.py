"""Local and embedded: moto's server, the stream runner and the local delivery stream."""
