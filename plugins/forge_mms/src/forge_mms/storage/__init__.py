"""The monitoring tables and their writer."""
