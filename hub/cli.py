"""The `switchboard` command (DESIGN.md section 5). Commands that change policy bump the revision, so a
running hub notices within its poll interval."""

import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
import uvicorn
from sqlalchemy import select

from hub import admin_auth, agents
from hub.audit import export, verify
from hub.db import Database, SchemaTooNew, migrate
from hub.errors import SwitchboardError
from hub.logs import configure_logging
from hub.models import AdminCredential, Agent
from hub.settings import Settings
from hub.vault import VaultError

# No pretty tracebacks: they print local variables, which may hold secrets.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Switchboard: a least-privilege connector hub for AI agents.",
)
admin_app = typer.Typer(no_args_is_help=True, help="Admin access.")
agent_app = typer.Typer(no_args_is_help=True, help="Agents and their keys.")
keys_app = typer.Typer(no_args_is_help=True, help="Master keys.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log.")
approvals_app = typer.Typer(no_args_is_help=True, help="Calls waiting for a human's approval.")
flow_app = typer.Typer(no_args_is_help=True, help="Data-flow rules: which traced data may reach which sink.")
app.add_typer(admin_app, name="admin")
app.add_typer(agent_app, name="agent")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(approvals_app, name="approvals")
app.add_typer(flow_app, name="flow")


def _settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


def _db(settings: Settings) -> Database:
    return Database(settings.database_url)


def _fail(error: SwitchboardError) -> None:
    typer.echo(f"error: {error.detail}", err=True)
    raise typer.Exit(2)


def _with_base_url(settings: Settings, host: str, port: int) -> Settings:
    if "base_url" in settings.model_fields_set:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return settings.model_copy(update={"base_url": f"http://{shown}:{port}"})


def _login_link(settings: Settings, db: Database) -> str:
    token = db.run_sync(lambda s: admin_auth.create_login_link(s, ttl=settings.login_link_ttl))
    return f"{settings.base_url.rstrip('/')}/admin/login?token={token}"


def _first_start(db: Database) -> bool:
    return db.run_sync(
        lambda s: s.scalar(select(AdminCredential.id).where(AdminCredential.kind.in_(("login", "session")))) is None
    )


def _serve(settings: Settings, host: str, port: int, *, announce_link: bool) -> None:
    from hub.app import create_app

    configure_logging(settings.log_level)
    try:
        migrate(settings.database_url)
    except SchemaTooNew as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from None
    db = _db(settings)
    if announce_link or _first_start(db):
        # Printed to the terminal, not the log: it is a one-time credential.
        print(
            f"Admin sign-in link (one use, {settings.login_link_ttl // 60} min): {_login_link(settings, db)}",
            flush=True,
        )
    db.dispose()
    try:
        app = create_app(settings)
    except VaultError as exc:
        typer.echo(
            f"error: the master keys cannot open this hub's secrets ({exc}); check SWITCHBOARD_MASTER_KEYS", err=True
        )
        raise typer.Exit(2) from None
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        access_log=settings.access_log,
    )


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Migrate the database, then serve the hub."""
    _serve(_with_base_url(_settings(), host, port), host, port, announce_link=False)


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve with sandbox providers, a connected `hubspot-demo` account and a demo agent."""
    from hub.demo import schedule_demo_setup

    settings = _with_base_url(_settings(sandbox=True), host, port)
    schedule_demo_setup(settings)
    _serve(settings, host, port, announce_link=True)


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""
    migrate(_settings().database_url)
    typer.echo("database is up to date")


@admin_app.command("token")
def admin_token() -> None:
    """Print a new admin API token (for /admin/api and /connect)."""
    settings = _settings()
    migrate(settings.database_url)
    typer.echo(_db(settings).run_sync(admin_auth.create_api_token))


@admin_app.command("link")
def admin_link() -> None:
    """Print a new one-time sign-in link for the admin page."""
    settings = _settings()
    migrate(settings.database_url)
    typer.echo(_login_link(settings, _db(settings)))


_Role = Annotated[str, typer.Option(help="What the agent is for, e.g. 'answers support tickets'")]
_Owner = Annotated[str, typer.Option(help="Who answers for the agent: a person or a team")]
_Model = Annotated[str, typer.Option(help="The model it runs on, e.g. 'claude-sonnet-4-5'")]
_Runtime = Annotated[str, typer.Option(help="Where it runs, e.g. 'Claude Code on the build box'")]


@agent_app.command("create")
def agent_create(
    name: str,
    description: Annotated[str, typer.Option(help="What the agent is for")] = "",
    role: _Role = "",
    owner: _Owner = "",
    model: _Model = "",
    runtime: _Runtime = "",
) -> None:
    """Create an agent; its key is printed once, alone on the last line."""
    settings = _settings()
    migrate(settings.database_url)
    roster = {"description": description, "role": role, "owner": owner, "model": model, "runtime": runtime}
    try:
        key = _db(settings).run_sync(lambda s: agents.create_agent(s, name=name, **roster)[1])
    except SwitchboardError as exc:
        _fail(exc)
    typer.echo(f"Created agent {name}. Its key is shown once; store it now:")
    typer.echo(key)


@agent_app.command("edit")
def agent_edit(
    name: str,
    description: Annotated[str | None, typer.Option(help="What the agent is for")] = None,
    role: Annotated[str | None, typer.Option(help="What the agent is for, e.g. 'answers support tickets'")] = None,
    owner: Annotated[str | None, typer.Option(help="Who answers for the agent: a person or a team")] = None,
    model: Annotated[str | None, typer.Option(help="The model it runs on")] = None,
    runtime: Annotated[str | None, typer.Option(help="Where it runs")] = None,
) -> None:
    """Change an agent's roster details; options left out stay as they are."""
    changes = {"description": description, "role": role, "owner": owner, "model": model, "runtime": runtime}
    try:
        _db(_settings()).run_sync(lambda s: agents.update_agent(s, agent=agents.get_agent(s, name=name), **changes))
    except SwitchboardError as exc:
        _fail(exc)
    typer.echo(f"agent {name} updated")


@agent_app.command("list")
def agent_list() -> None:
    """List agents with their grants."""

    def rows(session: Any) -> list[str]:
        lines = []
        for agent in session.scalars(select(Agent).order_by(Agent.name)):
            state = "disabled" if agent.disabled_at else "active"
            grants = ", ".join(f"{g.scope}@{g.connection.name}" for g in agent.grants) or "no grants"
            lines.append(f"{agent.name}\t{state}\t{grants}")
        return lines

    for line in _db(_settings()).run_sync(rows):
        typer.echo(line)


@agent_app.command("revoke")
def agent_revoke(name: str) -> None:
    """Disable an agent: all its keys stop working."""
    try:
        _db(_settings()).run_sync(lambda s: agents.disable_agent(s, agent=agents.get_agent(s, name=name)))
    except SwitchboardError as exc:
        _fail(exc)
    typer.echo(f"agent {name} disabled")


def _parse_constraints(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --constraints is not valid JSON ({exc.msg})", err=True)
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        typer.echo("error: --constraints must be a JSON object", err=True)
        raise typer.Exit(2)
    return value


@app.command()
def grant(
    agent: str,
    connection: str,
    scope: str,
    constraints: Annotated[str | None, typer.Option(help="JSON object")] = None,
) -> None:
    """Grant AGENT the hub SCOPE on CONNECTION."""
    parsed = _parse_constraints(constraints)
    try:
        _db(_settings()).run_sync(
            lambda s: agents.add_grant(
                s,
                agent=agents.get_agent(s, name=agent),
                connection=agents.get_connection(s, name=connection),
                scope=scope,
                constraints=parsed,
            )
        )
    except SwitchboardError as exc:
        _fail(exc)
    typer.echo(f"granted {scope} on {connection} to {agent}")


@app.command("revoke-grant")
def revoke_grant(agent: str, connection: str, scope: str) -> None:
    """Take back AGENT's SCOPE on CONNECTION."""
    try:
        _db(_settings()).run_sync(
            lambda s: agents.remove_grant(
                s,
                agent=agents.get_agent(s, name=agent),
                connection=agents.get_connection(s, name=connection),
                scope=scope,
            )
        )
    except SwitchboardError as exc:
        _fail(exc)
    typer.echo(f"revoked {scope} on {connection} from {agent}")


@app.command("tools")
def tools_table() -> None:
    """Print every tool as a Markdown table: hub scopes, the provider scopes they ask for, data labels."""
    from connectors import CONNECTORS

    def codes(items: Any) -> str:
        return ", ".join(f"`{item}`" for item in items) or "—"

    typer.echo("# Tools\n")
    typer.echo("Every tool, the hub scopes an agent must be granted, the provider scopes a connection asks for to")
    typer.echo("serve them, and the data labels of what it returns. Generated by `switchboard tools`.\n")
    for name, connector in CONNECTORS.items():
        manifest = connector.manifest
        typer.echo(f"## {manifest.display_name} (`{name}`)\n")
        typer.echo("| tool | hub scopes | provider scopes | data labels |\n|---|---|---|---|")
        for tool in connector.tools:
            provider = codes(manifest.provider_scopes(tool.scopes))
            typer.echo(f"| `{tool.name}` | {codes(tool.scopes)} | {provider} | {codes(tool.labels)} |")
        typer.echo("")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Seal every secret under the newest master key (adding one to the key file when keys live there)."""
    from hub.rotation import rotate

    settings = _settings()
    count, key_id = rotate(settings)
    typer.echo(f"re-encrypted {count} secrets under master key {key_id}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain from its first record to its head."""
    intact, count, problem = _db(_settings()).run_sync(verify)
    if not intact:
        typer.echo(f"audit chain BROKEN after {count} records: {problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {count} records")


@audit_app.command("export")
def audit_export(
    since: Annotated[datetime | None, typer.Option(help="ISO date or time, UTC")] = None,
) -> None:
    """Print audit records as JSON lines, oldest first."""
    from datetime import UTC

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    def dump(session: Any) -> None:
        for row in export(session, since=since):
            sys.stdout.write(json.dumps(row) + "\n")

    _db(_settings()).run_sync(dump)


@approvals_app.command("list")
def approvals_list(
    status: Annotated[
        str, typer.Option(help="pending, approved, running, done, failed, denied, expired or all")
    ] = "pending",
) -> None:
    """Print waiting (or decided) calls as JSON lines, newest first, with their exact arguments."""
    from hub import approvals
    from hub.runtime import open_vault

    settings = _settings()
    vault = open_vault(settings)
    views = _db(settings).run_sync(lambda s: approvals.listing(s, vault, status=None if status == "all" else status))
    for view in views:
        typer.echo(json.dumps(view.to_dict()))


def _decide(call_id: str, approve: bool) -> None:
    from hub import approvals

    try:
        status = _db(_settings()).run_sync(
            lambda s: approvals.decide(s, call_id=call_id, approve=approve, by="admin (cli)")
        )
    except SwitchboardError as exc:
        _fail(exc)
    runs = " (a running hub runs it within its poll interval, or the next hub to start)" if approve else ""
    typer.echo(f"call {call_id} {status}{runs}")


@approvals_app.command("approve")
def approvals_approve(call_id: str) -> None:
    """Approve a waiting call: it runs once, with exactly the arguments it was asked with."""
    _decide(call_id, True)


@approvals_app.command("deny")
def approvals_deny(call_id: str) -> None:
    """Deny a waiting call: it never runs, and the agent is answered approval_denied."""
    _decide(call_id, False)


@flow_app.command("allow")
def flow_allow(agent: str, label: str, target: str) -> None:
    """Let AGENT pass data of LABEL (e.g. pii.email, or pii) it read into TARGET (a sink tool or scope)."""
    try:
        _db(_settings()).run_sync(
            lambda s: agents.add_flow_rule(s, agent=agents.get_agent(s, name=agent), label=label, target=target)
        )
    except SwitchboardError as exc:
        _fail(exc)
    typer.echo(f"{agent} may pass {label} data into {target}")


def main() -> None:
    app()
