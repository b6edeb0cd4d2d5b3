"""Ingestion of back-office and trading exports: `manage.py import_ledger`, `POST /api/v1/ingest/`.

reading     files as streams of text chunks: encoding, hash, CSV / .xlsx / JSON
parsing     column types: a column of text in, typed values and problems out
kinds       what each kind of file holds: columns, key, references, rules across a row
validation  a chunk checked: parsed, row rules, references resolved
staging     the write: straight in, or staged and classified (duplicates, conflicts, reversals)
rejects     bad rows and their reasons, counted and saved
services    the import as a whole, and its record (ImportBatch)
api, urls   the API; admin: the record in Django admin
"""
