"""Command line of the ledger service: serve, migrate, verify."""

import argparse
from collections.abc import Sequence

from prepaid_ledger import __version__


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line; the subcommands are filled in by the ledger service."""
    parser = argparse.ArgumentParser(
        prog="prepaid-ledger",
        description="Prepaid Meter Ledger: prepaid accounts, tariffs, top-ups and webhooks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0
