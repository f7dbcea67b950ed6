"""Reusable widgets: image tiles, the key-map overlay."""
