"""Pure domain code: models, triage, corroboration, gazetteer. Knows nothing of Telegram or SQL."""
