"""What the certificates app announces, so that apps above it act without certs importing them.

Receivers run inside the sender's transaction; one with side effects outside the database
defers them with ``transaction.on_commit``.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent after certificates are stored (an import chunk, a single import). Argument: ``certificate_ids``.
certificates_stored = Signal()

# Sent for each certificate about to be deleted, before its row goes. Argument: ``certificate``.
certificate_deleting = Signal()

# Sent when connectors have re-wrapped certificate passwords to a new key (inside that
# transaction). Argument: ``certificate_ids``.
certificates_rewrapped = Signal()
