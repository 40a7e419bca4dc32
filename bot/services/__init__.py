"""Services: the use cases (intake, follow-up) over domain code and storage ports (Protocols)."""
