"""Make a published asv site render without a network: copy the vendored scripts and styles
(tools/asv_vendor/, licences and provenance in its README) into ``HTML_DIR/vendor`` and point every
page's CDN ``src``/``href`` at them.

    python tools/asv_offline.py .asv/html        # after `asv publish`

Exit status 1 (naming it) when a page still references a CDN URL this script does not know — an
asv upgrade that changed its pages — so the dashboard never silently goes blank again.
"""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import sys
from pathlib import Path

VENDOR = Path(__file__).with_name("asv_vendor")
FLOT = "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/"
LOCAL = {  # CDN URL in asv's pages → path under HTML_DIR
    "https://code.jquery.com/jquery-3.3.1.min.js": "vendor/jquery.min.js",
    FLOT + "jquery.flot.min.js": "vendor/jquery.flot.js",
    FLOT + "jquery.flot.time.min.js": "vendor/jquery.flot.time.js",
    FLOT + "jquery.flot.selection.min.js": "vendor/jquery.flot.selection.js",
    FLOT + "jquery.flot.categories.min.js": "vendor/jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": "vendor/jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": "vendor/stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "vendor/md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "vendor/bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": "vendor/css/bootstrap.min.css",
}
# A script or stylesheet still loaded from elsewhere (links to web pages are fine).
REMOTE_ASSET = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["'](https?:)?//[^"']+["']""", re.IGNORECASE)


TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
INTEGRITY = re.compile(r"""\bintegrity=["'][^"']*["']""")


def _local_tag(tag: str, html_dir: Path) -> str:
    """``tag`` pointing at the vendored copy of its CDN URL, its subresource-integrity hash that
    of the copy (the unminified flot files differ from the CDN's minified ones); else unchanged."""
    for url, local in LOCAL.items():
        if f'"{url}"' in tag:
            digest = base64.b64encode(hashlib.sha512((html_dir / local).read_bytes()).digest()).decode()
            tag = tag.replace(f'"{url}"', f'"{local}"')
            return INTEGRITY.sub(f'integrity="sha512-{digest}"', tag)
    return tag


def make_offline(html_dir: Path) -> list[str]:
    """Vendor and rewrite ``html_dir``; return the remote assets left (empty when offline-ready)."""
    if not (html_dir / "index.html").is_file():
        raise FileNotFoundError(f"{html_dir}/index.html not found: run `asv publish` first")
    shutil.copytree(VENDOR, html_dir / "vendor", dirs_exist_ok=True)
    left = []
    for page in sorted(html_dir.glob("*.html")):
        text = TAG.sub(lambda m: _local_tag(m.group(0), html_dir), page.read_text(encoding="utf-8"))
        page.write_text(text, encoding="utf-8")
        left += [f"{page.name}: {m.group(0)}" for m in REMOTE_ASSET.finditer(text)]
    return left


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        left = make_offline(Path(argv[0]))
    except FileNotFoundError as err:
        print(f"asv_offline: {err}", file=sys.stderr)
        return 2
    for line in left:
        print(f"asv_offline: still remote: {line}", file=sys.stderr)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
