"""SQLite storage: connection and pragmas, ordered migrations, and the repositories (cases, conversations)."""
