"""A real MCP client (the official Python SDK) driving `testio-sync mcp` over stdio.

Run by tests/e2e/mcp.rs: `python mcp_client.py SCENARIO SERVER_JSON`, where SERVER_JSON
is {"command", "args", "env"}. It prints one JSON object with what it saw; the Rust test
checks it against the database and the simulator.
"""

import asyncio
import json
import sys
import time

from mcp import ClientSession, StdioServerParameters, stdio_client

TIMEOUT = 120


def tool_result(result):
    """The parts of a CallToolResult a test cares about."""
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {"is_error": bool(result.is_error), "structured": result.structured_content, "text": "\n".join(texts)}


async def call(session, name, arguments=None, progress=None):
    result = await session.call_tool(name, arguments or {}, read_timeout_seconds=TIMEOUT, progress_callback=progress)
    return tool_result(result)


async def tour(session):
    """Every tool once, with progress, then bad input."""
    listed = await session.list_tools()
    tools = [
        {"name": t.name, "description": t.description, "input": t.input_schema, "output": t.output_schema}
        for t in listed.tools
    ]
    progress = []

    async def on_progress(value, total, message):
        progress.append({"progress": value, "total": total, "message": message})

    synced = await call(session, "sync_data", {"product_ids": [1, 2]}, on_progress)
    status = await call(session, "sync_status")
    history = await call(session, "sync_history", {"limit": 5})
    bad_since = await call(session, "sync_data", {"since": "soonish"})
    bad_ids = await call(session, "sync_data", {"product_ids": "1,abc"})
    bad_limit = await call(session, "sync_history", {"limit": 0})
    # The MCP Inspector CLI sends a list argument as a string.
    inspector = await call(session, "sync_data", {"product_ids": "[1, 2]"})
    spaced = await call(session, "sync_data", {"product_ids": "1 2"})
    everything = await call(session, "sync_data", {"product_ids": 3, "since": "all"})
    return {
        "tools": tools,
        "sync": synced,
        "progress": progress,
        "status": status,
        "history": history,
        "bad_since": bad_since,
        "bad_ids": bad_ids,
        "bad_limit": bad_limit,
        "inspector": inspector,
        "spaced": spaced,
        "everything": everything,
    }


async def concurrent(session):
    """A sync_data call fired while the scheduler syncs; other calls meanwhile."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        status = (await call(session, "sync_status"))["structured"]
        # The lock is held once the scheduler's sync is under way.
        if status["scheduler"]["state"] == "syncing" and status["lock_holder"]:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the scheduler never started a sync")
        await asyncio.sleep(0.05)

    plain = asyncio.create_task(call(session, "sync_data"))
    forced = asyncio.create_task(call(session, "sync_data", {"force": True}))
    answered = []
    while not forced.done():
        during = await call(session, "sync_status")
        await call(session, "sync_history", {"limit": 3})
        if not forced.done():
            answered.append(during["structured"])
        await asyncio.sleep(0.1)
    return {"plain": await plain, "forced": await forced, "answered_while_syncing": answered}


async def busy(session):
    """A sync while another process holds the lock."""
    return {"sync": await call(session, "sync_data"), "status": await call(session, "sync_status")}


async def customers(session):
    """Calls naming customer b, calls naming none (the default), and an unknown name."""
    return {
        "sync_b": await call(session, "sync_data", {"customer": "b"}),
        "sync_default": await call(session, "sync_data"),
        "status_b": await call(session, "sync_status", {"customer": "b"}),
        "status_all": await call(session, "sync_status"),
        "history_b": await call(session, "sync_history", {"customer": "b"}),
        "history_default": await call(session, "sync_history"),
        "unknown_sync": await call(session, "sync_data", {"customer": "nobody"}),
        "unknown_status": await call(session, "sync_status", {"customer": "nobody"}),
        "unknown_history": await call(session, "sync_history", {"customer": "nobody"}),
    }


SCENARIOS = {"tour": tour, "concurrent": concurrent, "busy": busy, "customers": customers}


async def main():
    scenario, server = SCENARIOS[sys.argv[1]], json.loads(sys.argv[2])
    params = StdioServerParameters(command=server["command"], args=server["args"], env=server["env"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=TIMEOUT) as session:
            await session.initialize()
            report = await scenario(session)
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
