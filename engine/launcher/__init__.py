"""Verified launches: create, verify against the profile, start, stream, wait, remove; workers."""
