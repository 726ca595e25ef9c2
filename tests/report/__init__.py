"""`policy report` over synthetic histories (no engine)."""
