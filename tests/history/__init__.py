"""Unit tests of engine/history/ on temporary files and databases."""
