"""Database URLs in messages: :func:`redact` hides the secrets a URL may carry.

A read-model or outbox URL such as ``postgresql://app:secret@db:5432/agency?sslpassword=x`` holds
credentials; anything that logs a URL, raises with one or derives a name from one passes it through
:func:`redact` first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# libpq takes these as query parameters of a URL too (``?password=...``).
SECRET_PARAMETERS = frozenset({"password", "sslpassword", "passfile", "sslkey"})
# Used when the URL does not parse (e.g. an unclosed "[" in the host): hide everything from the first
# ":" after the user name up to the last "@", hiding too much rather than too little.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):.*@", re.DOTALL)


def redact(url: str) -> str:
    """``url`` with its password (in the user part or as a query parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
        hostinfo = parts.netloc.rpartition("@")[2]
    except ValueError:
        return _redact_query(_USERINFO.sub(rf"\1:{MASK}@", url))
    if password is None:
        return _redact_query(url)
    netloc = f"{parts.username or ''}:{MASK}@{hostinfo}"
    return _redact_query(urlunsplit(parts._replace(netloc=netloc)))


def _redact_query(url: str) -> str:
    base, mark, query = url.partition("?")
    if not mark:
        return url
    fragment = ""
    if "#" in query:
        query, fragment = query.split("#", 1)
        fragment = "#" + fragment
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(name.lower() in SECRET_PARAMETERS for name, _ in pairs):
        return url
    hidden = [(name, MASK if name.lower() in SECRET_PARAMETERS else value) for name, value in pairs]
    return f"{base}?{urlencode(hidden, safe='*/:')}{fragment}"
