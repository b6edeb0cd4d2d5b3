"""The demo book behind `manage.py seed_demo` and `bench/seed_large.py`.

- book:        orchestration: reset, users, reference data, chunks, one transaction
- population:  the clients as per-client numpy arrays (archetypes, money, activity)
- rows:        client, KYC, risk assessment and interaction rows for a chunk of clients
- ledger:      trades, cash flows and asset snapshots, one month at a time, in time order
- reference:   branches, name parts, the instrument universe
- calendar:    trading days and sessions in the exchange's time zone
- writers:     the bulk writers (PostgreSQL binary COPY, SQLite executemany) and `bulk_writer()`
- pgbinary:    numpy columns -> PostgreSQL binary COPY rows
- users:       demo users, role groups, ops permissions, the API token
- report:      the commission concentration measured in the database
"""
