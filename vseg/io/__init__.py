"""File formats: each is read and written in one place."""
