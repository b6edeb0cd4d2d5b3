"""Admin for import batches (registered by clients/admin.py)."""
