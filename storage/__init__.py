"""SQLite storage: connection and pragmas, ordered migrations, and (later) repositories."""
