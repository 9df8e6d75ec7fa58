"""Certificate pages: ``imports`` (single and bulk import, batches), ``certificates`` (the list, deletes,
clean-up, the user page's section) and ``keys`` (encryption keys)."""

from __future__ import annotations

# Rows per page of every list of certificates, imports and import rows.
PAGE_SIZE = 50
