"""WHIP/WHEP URLs as VoxBento's browser code builds them (contract 5.5, 6.2, 12.3).

The interpreter page builds its WHIP URL itself as ``{whip_base}/{encodeURIComponent(channel)}/whip``,
so the channel's slashes travel percent-encoded as one segment (``/loadtest%2F1%2Fes/whip``); the
listener's WHEP URL comes from the server (``whep_url``) with the path not encoded. MediaMTX decodes
the path before matching, so both forms address the same stream.
"""

from __future__ import annotations

from urllib.parse import quote

# JavaScript's encodeURIComponent leaves A-Z a-z 0-9 and - _ . ! ~ * ' ( ) unescaped; Python's quote
# always keeps letters, digits and _.-~, so the extra safe set is the rest of that list.
_ENCODE_URI_COMPONENT_SAFE = "!*'()"


def encode_uri_component(value: str) -> str:
    return quote(value, safe=_ENCODE_URI_COMPONENT_SAFE)


def browser_whip_url(whip_base: str, channel: str) -> str:
    """Contract 5.5: `POST {whip_base}/{encodeURIComponent(channel)}/whip` (what the interpreter JS sends)."""
    return f"{whip_base.rstrip('/')}/{encode_uri_component(channel)}/whip"


def plain_whep_url(whip_base: str, mediamtx_path: str) -> str:
    """Contract 6.1/12.3: the server-built WHEP URL, path segments not encoded."""
    return f"{whip_base.rstrip('/')}/{mediamtx_path}/whep"
