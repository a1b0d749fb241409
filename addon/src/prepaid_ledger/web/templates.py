"""One Jinja2 environment for every page the ledger renders on the server.

Values reach HTML only through autoescaping templates, never through hand-written escaping, so
an account named ``<script>`` or ``{{7*7}}`` stays text. StrictUndefined turns a misspelt
variable into an error in the tests instead of a silently empty field on a tenant's phone.
Every page is rendered for one reader's language (``web/i18n.py``): the template's ``_()``
translates, ``html_lang`` names the language, ``languages`` is its switcher (empty: none shown).
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from prepaid_ledger.web.i18n import DEFAULT, Speaker, speaker

#: Shared by every page; Jinja2 caches each compiled template, and nothing reloads from disk.
ENVIRONMENT = Environment(
    loader=PackageLoader("prepaid_ledger.web", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, /, *, reader: Speaker | None = None, **values: object) -> str:
    """Render the packaged template NAME (autoescaped when it ends in .html) with VALUES.

    READER is the language the page speaks (English when not given).
    """
    words = reader or speaker(DEFAULT)
    values.setdefault("languages", [])
    return ENVIRONMENT.get_template(name).render(
        _=words.gettext, html_lang=words.html_lang, **values
    )
