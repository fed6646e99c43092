"""Stowage core: the erasure-coded object engine, metadata, services and the daemon."""

__version__ = "0.1.0"
