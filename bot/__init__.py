"""Beacon: an anonymous, multilingual reporting bot for people held in online-scam compounds."""
