"""gunicorn settings of the production image (`--config python:brokercrm.gunicorn_conf`).

The access log records the path without its query string (`%(U)s`, not `%(r)s`): a compliance
officer's admin search carries an ID number in `?q=`, and logs must not hold identifiers.
"""

accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s'
