"""A tiny Django project served from the instance (see ../../README.md)."""
