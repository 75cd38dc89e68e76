"""一店一码 labels: the QR code of a target's ``code``, with the code and the name printed under it,
as the sticker that goes on a shop front or a site's gate.

The QR code holds the code alone, which is what an officer's device scans and looks up with
``GET /api/v1/targets/by-code/<code>``: letters and digits of QR's alphanumeric mode, so the
symbol is the smallest there is (21 × 21 modules) and still reads with a quarter of it soiled
(error correction level Q: stickers outdoors get dirty and scratched).

A label is SVG: it prints sharp at any size, and the printer's own fonts draw the Chinese name,
which no font shipped with the server would have to cover.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

import segno

from fieldapp.targets.models import Target

#: Size of one QR module in the label's units (px at 96 dpi: 1.9 mm, so the symbol with its
#: quiet zone is 5.5 cm wide, which a phone reads from arm's length).
MODULE = 8
#: The quiet zone QR needs around the symbol, in modules.
QUIET_ZONE = 4
CODE_FONT_SIZE = 22
NAME_FONT_SIZE = 18
#: Space left and right of the name, in the label's units.
MARGIN = 8


#: What XML 1.0 cannot hold (control characters but tab and line breaks, U+FFFE/U+FFFF, lone
#: surrogates): one of them makes the whole document unreadable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _printable(text: str) -> str:
    """``text`` with what XML cannot hold as a space: names are refused with control characters
    now, but one stored before (a vertical tab pasted from a spreadsheet) still gets its label,
    its words apart as they were in the cell."""
    return _NOT_XML.sub(" ", text)


def _text_width(text: str, font_size: int) -> float:
    """About how wide ``text`` is set in a sans-serif font: Chinese characters take a full em,
    Latin letters and digits a little over half of one."""
    return sum(font_size if ord(ch) > 0x2E7F else 0.6 * font_size for ch in text)


def label_svg(target: Target) -> str:
    """The target's label as an SVG document: its QR code, then its code, then its name (squeezed
    to the label's width when it is longer)."""
    qr = segno.make_qr(target.code, error="q")
    symbol = qr.svg_inline(scale=MODULE, border=QUIET_ZONE, omitsize=False)
    width = qr.symbol_size(scale=MODULE, border=QUIET_ZONE)[0]
    code_y = width + CODE_FONT_SIZE
    name_y = code_y + NAME_FONT_SIZE + 10
    height = name_y + MARGIN + 4
    printable = _printable(target.name)
    name = escape(printable)
    fit = ""
    if _text_width(printable, NAME_FONT_SIZE) > width - 2 * MARGIN:
        fit = f' textLength="{width - 2 * MARGIN}" lengthAdjust="spacingAndGlyphs"'
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">'
        f"<title>{escape(target.code)} {name}</title>"
        f'<rect width="{width}" height="{height}" fill="#fff"/>'
        f"{symbol}"
        f'<text x="{width / 2}" y="{code_y}" text-anchor="middle" font-family="monospace"'
        f' font-size="{CODE_FONT_SIZE}" letter-spacing="2">{escape(target.code)}</text>'
        f'<text x="{width / 2}" y="{name_y}" text-anchor="middle" font-family="sans-serif"'
        f' font-size="{NAME_FONT_SIZE}"{fit}>{name}</text>'
        "</svg>\n"
    )
