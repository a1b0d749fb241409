"""One Jinja2 environment for every page the ledger renders on the server.

Values reach HTML only through autoescaping templates, never through hand-written escaping, so
an account named ``<script>`` or ``{{7*7}}`` stays text. StrictUndefined turns a misspelt
variable into an error in the tests instead of a silently empty field on a tenant's phone.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

#: Shared by every page; Jinja2 caches each compiled template, and nothing reloads from disk.
ENVIRONMENT = Environment(
    loader=PackageLoader("prepaid_ledger.web", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, /, **values: object) -> str:
    """Render the packaged template NAME (autoescaped when it ends in .html) with VALUES."""
    return ENVIRONMENT.get_template(name).render(**values)
