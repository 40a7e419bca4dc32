"""The reporter's conversation: a guided, anonymous report and its follow-ups (/status, /add, /delete)."""
