"""Embedding geometric objects into multivectors and extracting them again, per algebra."""
