"""Thin python-telegram-bot callbacks: parse the update, call one service, answer with translated text."""
