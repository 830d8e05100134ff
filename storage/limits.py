"""The longest text each catalog column holds, declared once.

``schema.py`` sizes its columns from these numbers and every request that writes or
searches a column is validated against the same number, so nothing the service accepts
can fail its column: PostgreSQL refuses an over-long ``varchar`` (a 500 after validation
passed), SQLite stores it, and the two stacks would disagree.
"""

from __future__ import annotations

# call_id, agent_id, customer_id, queue; a hold's case reference; a request's reference.
IDENTIFIER = 255
PHONE_NUMBER = 64
# Accounts, tokens, sessions' user names and every actor written beside them.
NAME = 128
# Free-text reasons are TEXT columns; the limit keeps the log, pages and exports sane.
REASON = 2000
