"""Two hub processes on one database share one token refresh; `switchboard demo` works with no credentials."""

import asyncio
import os
import sys
from pathlib import Path

import httpx

from connectors import CONNECTORS
from tests.harness import Process, Sandbox, free_port, run_hub


def test_two_replicas_share_one_refresh(tmp_path: Path, database_url: str, hubspot: Sandbox) -> None:
    with run_hub(tmp_path / "a", database_url, providers={"hubspot": hubspot}) as first:
        first.connect("hubspot", "crm", "crm.contacts.read")
        key = first.create_agent("bot")
        first.grant("bot", "crm", "crm.contacts.read")
        # The second replica shares the database and the master key.
        shared = {"SWITCHBOARD_MASTER_KEYS": (first.data_dir / "master.key").read_text().strip().replace("\n", ",")}
        with run_hub(tmp_path / "b", database_url, providers={"hubspot": hubspot}, extra_env=shared) as second:
            urls = [first.url, second.url]

            async def burst(n: int) -> list[int]:
                async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
                    answers = await asyncio.gather(
                        *(
                            client.post(f"{urls[i % 2]}/v1/tools/hubspot_contacts_search/call", json={"arguments": {}})
                            for i in range(n)
                        )
                    )
                return [a.status_code for a in answers]

            assert asyncio.run(burst(4)) == [200] * 4  # both replicas hold a live token
            hubspot.control("expire-tokens")
            before = hubspot.stats()["token_requests"].get("refresh_token", 0)
            assert asyncio.run(burst(30)) == [200] * 30
            assert hubspot.stats()["token_requests"]["refresh_token"] == before + 1


def test_demo_serves_a_connected_sandbox_and_a_working_agent(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env |= {"SWITCHBOARD_DATA_DIR": str(tmp_path / "var"), "SWITCHBOARD_DATABASE_URL": f"sqlite:///{tmp_path}/demo.db"}
    demo = Process([sys.executable, "-m", "hub", "demo", "--port", str(port)], env, tmp_path / "demo.log")
    demo.start()
    try:
        demo.wait_for(f"http://127.0.0.1:{port}/healthz")
        for _ in range(300):
            output = demo.log_path.read_text()
            if "Agent key for demo-agent" in output or "demo set-up failed" in output:
                break
            asyncio.run(asyncio.sleep(0.1))
        lines = output.strip().splitlines()
        assert "Agent key for demo-agent" in output, output[-2000:]
        assert "/admin/login?token=sbl_" in output
        key = next(line for line in reversed(lines) if line.startswith("sbk_"))
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as agent:
            tools = agent.get("/v1/tools").json()["tools"]
            # Every sandbox provider is connected, and the demo agent may only read.
            assert {c for t in tools for c in t["connections"]} == {f"{p}-demo" for p in CONNECTORS}
            assert all(scope.endswith(".read") for t in tools for scope in t["scopes"])
            found = agent.post("/v1/tools/hubspot_contacts_search/call", json={"arguments": {"query": "ada"}})
            assert found.status_code == 200 and found.json()["result"]["contacts"]
            assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {"status": "ready"}
            assert "switchboard_tool_calls_total" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        demo.stop()
