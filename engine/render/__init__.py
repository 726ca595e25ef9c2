"""Profile -> text or engine request: one shared walk over the profile, one module per target.

Each renderer declares what it cannot express; `interface.render` refuses such a profile by
naming every field, the same way for every target.
"""
