"""The contract between the Prepaid Meter integration and the Prepaid Meter Ledger.

One description of the ledger's HTTP API that both halves import: the status vocabularies
(``vocabulary``), the rules every value on the wire follows (``wire``), the request, response
and stream-event models (``readings``, ``accounts``, ``events``), the error body and the
client's exceptions (``errors``), and a typed async client (``client``).
"""

from __future__ import annotations

__version__ = "0.1.0"
