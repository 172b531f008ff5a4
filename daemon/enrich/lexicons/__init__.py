"""Lexicon files (package data): see daemon.enrich.lexicon for the format."""
