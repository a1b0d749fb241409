"""Allow ``python -m prepaid_ledger``."""

from prepaid_ledger.cli import main

raise SystemExit(main())
