"""`policy report`: what the history says about a window of launches. `queries.build` makes a
`model.UsageReport` in SQL over the SQLite history; `formats/` renders it (table, JSON, HTML).

Only the HTML format imports matplotlib and jinja2, and only `policy report` imports this
package: neither reaches `policy run` or `import engine` (tests/test_imports.py).
"""
