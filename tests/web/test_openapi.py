"""/openapi.json describes exactly the routes the app serves, with the access each one has."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from atsd.web import DemoStatusSource, create_app
from tests.web.conftest import make_cfg


def served_routes(source: DemoStatusSource) -> dict[tuple[str, str], str]:
    app = create_app(make_cfg(), source)
    out = {}
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD to every GET by itself
            continue
        assert route.resource is not None
        out[(route.resource.canonical, route.method.lower())] = getattr(route.handler, "atsd_access", "?")
    return out


async def test_openapi_describes_every_route_and_nothing_else(client: TestClient, source: DemoStatusSource) -> None:
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    described = {(path, method): op["x-atsd-access"] for path, ops in doc["paths"].items() for method, op in ops.items()}
    served = served_routes(source)
    assert set(described) == set(served), (set(described) ^ set(served))
    assert described == served  # open / read / write as the guard enforces it


async def test_openapi_operations_are_complete(client: TestClient) -> None:
    doc = await (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and "200" in op["responses"] and "503" in op["responses"], (path, method)
            if op["x-atsd-access"] == "write":
                assert {"401", "403"} <= set(op["responses"]) and op["security"] == [{"bearer": []}]
            if method == "post":
                assert "400" in op["responses"] and "413" in op["responses"]
            for name in ("{device_id}", "{name}"):
                if name in path:
                    assert any(p["name"] == name[1:-1] and p["in"] == "path" for p in op["parameters"])
    text = str(doc)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in schemas, ref
