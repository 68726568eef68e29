"""A small STAC API on 127.0.0.1: ``/``, ``/collections``, ``/collections/{id}``,
``/collections/{id}/items`` and ``/search`` (GET and POST), enough for pystac-client.

Search understands ``collections``, ``intersects``, ``bbox``, ``datetime`` (an instant or
an interval, open ends as ``..``) and ``limit``; every search body is kept in
:attr:`StacServer.searches` so tests can check what was asked.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import shapely.geometry as sg

__all__ = ["StacServer"]

CONFORMS_TO = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
]


def _interval(text: str | None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    if not text:
        return None, None
    parts = text.split("/") if "/" in text else [text, text]
    lo, hi = (None if p in ("", "..") else pd.Timestamp(p).tz_localize(None) for p in parts)
    return lo, hi


def _matches(item: dict, search: dict) -> bool:
    wanted = search.get("collections")
    if isinstance(wanted, str):
        wanted = wanted.split(",")
    if wanted and item.get("collection") not in wanted:
        return False
    geom = sg.shape(item["geometry"])
    if "intersects" in search and not geom.intersects(sg.shape(search["intersects"])):
        return False
    if "bbox" in search:
        box = search["bbox"]
        box = [float(v) for v in (box.split(",") if isinstance(box, str) else box)]
        if not geom.intersects(sg.box(*box[:4])):
            return False
    lo, hi = _interval(search.get("datetime"))
    when = item["properties"].get("datetime")
    if when and (lo is not None or hi is not None):
        t = pd.Timestamp(when).tz_localize(None)
        if (lo is not None and t < lo) or (hi is not None and t > hi):
            return False
    return True


class StacServer:
    """Serve ``items`` (STAC Item dicts, each with a ``collection``) as a STAC API.

    Parameters
    ----------
    items : the items; their collections are listed from them.
    collections : extra fields per collection id (``description``, ``license``...).
    fail : answer every request with this HTTP status (an unreachable or broken API).

    Examples
    --------
    >>> from pystac_client import Client
    >>> item = {"type": "Feature", "stac_version": "1.0.0", "id": "a", "collection": "c",
    ...         "geometry": sg.mapping(sg.box(0, 0, 1, 1)), "bbox": [0, 0, 1, 1],
    ...         "properties": {"datetime": "2020-01-01T00:00:00Z"}, "links": [], "assets": {}}
    >>> with StacServer([item]) as srv:
    ...     found = Client.open(srv.url).search(collections=["c"], bbox=[0.5, 0.5, 2, 2])
    ...     print([i.id for i in found.items()])
    ['a']
    """

    def __init__(
        self, items: list[dict], collections: dict[str, dict] | None = None, fail: int = 0
    ):
        self.items = list(items)
        self.collections = dict(collections or {})
        for item in self.items:
            self.collections.setdefault(item["collection"], {})
        self.fail = fail
        self.searches: list[dict] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def collection(self, cid: str) -> dict:
        return {
            "type": "Collection",
            "id": cid,
            "stac_version": "1.0.0",
            "description": cid,
            "license": "proprietary",
            "extent": {
                "spatial": {"bbox": [[-180, -90, 180, 90]]},
                "temporal": {"interval": [[None, None]]},
            },
            "links": [
                {"rel": "self", "href": f"{self.url}/collections/{cid}"},
                {"rel": "root", "href": f"{self.url}/"},
                {"rel": "items", "href": f"{self.url}/collections/{cid}/items"},
            ],
            **self.collections[cid],
        }

    def landing(self) -> dict:
        search = {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json"}
        return {
            "type": "Catalog",
            "id": "itscube-test-stac",
            "stac_version": "1.0.0",
            "description": "itscube test STAC API",
            "conformsTo": CONFORMS_TO,
            "links": [
                {"rel": "self", "href": f"{self.url}/"},
                {"rel": "root", "href": f"{self.url}/"},
                {"rel": "data", "href": f"{self.url}/collections"},
                {**search, "method": "GET"},
                {**search, "method": "POST"},
            ],
        }

    def search(self, body: dict) -> dict:
        self.searches.append(body)
        hits = [i for i in self.items if _matches(i, body)]
        limit = int(body.get("limit") or len(hits) or 1)
        return {"type": "FeatureCollection", "features": hits[:limit], "links": []}

    def start(self) -> StacServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def _send(self, doc: dict | None, status: int = 200) -> None:
                body = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if owner.fail:
                    return self._send({"code": owner.fail}, owner.fail)
                parsed = urllib.parse.urlparse(self.path)
                path = parsed.path.rstrip("/")
                query = dict(urllib.parse.parse_qsl(parsed.query))
                parts = path.split("/")
                if path == "":
                    return self._send(owner.landing())
                if path == "/collections":
                    cols = [owner.collection(c) for c in owner.collections]
                    return self._send({"collections": cols, "links": []})
                if len(parts) == 3 and parts[1] == "collections" and parts[2] in owner.collections:
                    return self._send(owner.collection(parts[2]))
                if len(parts) == 4 and parts[3] == "items" and parts[2] in owner.collections:
                    return self._send(owner.search({**query, "collections": [parts[2]]}))
                if path == "/search":
                    return self._send(owner.search(query))
                return self._send({"code": "NotFound"}, 404)

            def do_POST(self):
                if owner.fail:
                    return self._send({"code": owner.fail}, owner.fail)
                if urllib.parse.urlparse(self.path).path.rstrip("/") != "/search":
                    return self._send({"code": "NotFound"}, 404)
                length = int(self.headers.get("Content-Length") or 0)
                return self._send(owner.search(json.loads(self.rfile.read(length) or b"{}")))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> StacServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
