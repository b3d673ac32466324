"""The hub keeps its startup heap out of the garbage collector's sight while it serves (hub.app): with it,
full collections scanned every module, SDK and schema object, 140-160 ms each, the hub's worst latencies."""

import gc
from pathlib import Path

from starlette.testclient import TestClient

from hub.app import create_app
from hub.db import migrate
from hub.settings import Settings


def test_the_startup_heap_is_frozen_while_the_hub_serves_and_released_when_it_stops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    migrate(url)
    app = create_app(Settings(database_url=url, data_dir=tmp_path, sandbox=True))
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        frozen = gc.get_freeze_count()
        assert frozen > 100_000  # the modules, SDKs and schemas the hub loaded
        client.get("/readyz")
        assert gc.get_freeze_count() <= frozen  # what calls allocate stays collectable, out of it
    assert gc.get_freeze_count() == 0
