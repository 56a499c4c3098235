"""`souverain chat`: talk to a model or an agent of a running gateway, from a shell.

    souverain chat --model smollm2-135m-instruct --key sk-sv-...
    souverain chat --agent "Contracts assistant"

The answer streams as it is written. The terminal keeps the conversation: a model chat
sends the whole history each turn; an agent chat is a server-side conversation (started
on the first message, appended to after). Lines starting with `/` are commands:
`/exit` (or Ctrl-D) leaves, `/reset` starts over, `/help` lists them. Ctrl-C stops an
answer being written; at the prompt it leaves.

Output: answers on stdout, everything else (prompt, banner, tool notices, errors) on
stderr, so `souverain chat < questions.txt > answers.txt` keeps only the answers. Exit
status: 0 when every turn was answered, 1 when one failed (its error is printed and the
chat goes on) or the chat could not start (key refused, server unreachable, no such
model or agent), 130 after Ctrl-C at the prompt.
"""

from __future__ import annotations

import sys
import urllib.parse
from typing import Any, TextIO

import click

from .chat_sessions import AgentSession, ChatError, Gateway, ModelSession, PendingCall
from .cli_options import config_option
from .errors import ConfigError

DEFAULT_URL = "http://127.0.0.1:8000"
HELP = "/exit  leave (or Ctrl-D)\n/reset  start a new conversation\n/help  this list"
Session = ModelSession | AgentSession


@click.command("chat")
@click.option("--agent", help="Chat with this agent (its name or id): /v1/conversations.")
@click.option("--model", help="Chat with this model (default: the server's first chat model).")
@click.option(
    "--url",
    envvar="SOUVERAIN_URL",
    default=None,
    help="The gateway (env: SOUVERAIN_URL; default: the address in the serve config, "
    f"else {DEFAULT_URL}).",
)
@click.option(
    "--key",
    envvar=["SOUVERAIN_API_KEY", "SOUVERAIN_ADMIN_KEY"],
    default=None,
    help="Your API key (env: SOUVERAIN_API_KEY).",
)
@config_option
@click.option("--system", help="A system message for a model chat.")
@click.option("--max-tokens", type=click.IntRange(min=1), help="At most this many per answer.")
@click.option("--temperature", type=click.FloatRange(min=0, max=2))
def chat(
    agent: str | None,
    model: str | None,
    url: str | None,
    key: str | None,
    config_file: str | None,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
) -> None:
    """Chat with a model or an agent of a running Souverain, answers streamed.

    Example: souverain chat --model smollm2-135m-instruct --key sk-sv-...
    """  # fmt: skip
    if agent and model:
        raise click.UsageError("give --agent or --model, not both")
    if not key:
        raise click.ClickException("no API key: pass --key or set SOUVERAIN_API_KEY")
    gateway = Gateway(url or default_url(config_file), key)
    try:
        sys.exit(_start(gateway, agent, model, system, max_tokens, temperature))
    except KeyboardInterrupt:  # Ctrl-C while connecting: leave quietly
        click.echo("", err=True)
        sys.exit(130)


def _start(
    gateway: Gateway,
    agent: str | None,
    model: str | None,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
) -> int:
    try:
        if agent:
            if system or max_tokens or temperature is not None:
                raise click.UsageError("--system, --max-tokens and --temperature are for --model")
            session: Session = open_agent(gateway, agent)
        else:
            options = {"max_tokens": max_tokens, "temperature": temperature}
            chosen = open_model(gateway, model)
            session = ModelSession(
                gateway, chosen, system, {k: v for k, v in options.items() if v is not None}
            )
    except ChatError as exc:
        raise click.ClickException(_explain(exc)) from None
    return converse(session, sys.stdin, sys.stdout, sys.stderr)


def default_url(config_file: str | None) -> str:
    """Where `souverain serve` listens with the same configuration (file, SOUVERAIN_*)."""
    from .config import load_settings

    try:
        server = load_settings(config_file).server
    except ConfigError:
        return DEFAULT_URL
    host = server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def open_model(gateway: Gateway, wanted: str | None) -> str:
    """The model to chat with: `wanted` if the key may use it, else the first chat model."""
    listed = gateway.request("GET", "/v1/models")  # checks the key, too
    models = [item for item in listed.get("data") or () if isinstance(item, dict)]
    if wanted:
        for item in models:
            if wanted in (item.get("id"), *(item.get("aliases") or ())):
                return wanted
        names = ", ".join(str(item.get("id")) for item in models) or "none"
        raise ChatError(f"no model {wanted!r} on {gateway.url} for this key (models: {names})")
    for item in models:
        if (item.get("capabilities") or {}).get("completion_chat"):
            return str(item["id"])
    raise ChatError(f"{gateway.url} serves no chat model to this key")


def open_agent(gateway: Gateway, wanted: str) -> AgentSession:
    """The agent by id, else by name (the first the server lists with that name)."""
    try:
        found = gateway.request("GET", f"/v1/agents/{urllib.parse.quote(wanted, safe='')}")
        return AgentSession(gateway, str(found["id"]), str(found.get("name") or wanted))
    except ChatError as exc:
        if exc.status != 404:
            raise
    try:
        query = urllib.parse.urlencode({"name": wanted, "page_size": 100})
        listed = gateway.request("GET", f"/v1/agents?{query}")
    except ChatError as exc:
        if exc.status == 404:
            raise ChatError(
                f"{gateway.url} has no agents API: agent chats need /v1/agents and "
                "/v1/conversations (Mistral's Agents and Conversations APIs)",
                404,
            ) from None
        raise
    items = listed if isinstance(listed, list) else (listed or {}).get("data") or []
    for item in items:
        if isinstance(item, dict) and item.get("name") == wanted:
            return AgentSession(gateway, str(item["id"]), wanted)
    raise ChatError(f"no agent named or numbered {wanted!r} on {gateway.url}", 404)


def converse(session: Session, stdin: TextIO, stdout: TextIO, stderr: TextIO) -> int:
    """The read-answer loop; the exit status."""
    interactive = stdin.isatty()
    if isinstance(session, AgentSession):
        session.notify = lambda notice: _aside(stderr, notice)
        session.confirm = lambda call: _approve(call, stdin, stderr, interactive)
    if interactive:
        _aside(stderr, f"Chatting with {session.title}. /help for commands, /exit to leave.")
    failed = False
    while True:
        try:
            line = _read(stdin, stderr, interactive)
        except KeyboardInterrupt:
            stderr.write("\n")
            return 130
        if line is None:  # end of input: Ctrl-D, or the last line of a pipe
            if interactive:
                stderr.write("\n")
            return 1 if failed else 0
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            command = text.split()[0].lower()
            if command in ("/exit", "/quit"):
                return 1 if failed else 0
            if command == "/reset":
                session.reset()
                _aside(stderr, "(new conversation)")
            else:
                _aside(stderr, HELP)
            continue
        try:
            answer(session, text, stdout)
        except KeyboardInterrupt:
            _aside(stderr, "[stopped]")
        except ChatError as exc:
            _aside(stderr, f"error: {_explain(exc)}")
            failed = True
            if exc.fatal:
                return 1


def answer(session: Session, text: str, stdout: TextIO) -> None:
    """Stream one answer to stdout; a cut answer still ends its line."""
    wrote = False
    try:
        for piece in session.send(text):
            stdout.write(piece)
            stdout.flush()
            wrote = True
    finally:
        if wrote:
            stdout.write("\n")
    if isinstance(session, AgentSession) and session.sources:
        stdout.write(_sources(session.sources) + "\n")
    stdout.flush()


def _sources(sources: list[dict[str, Any]]) -> str:
    lines = ["Sources:"]
    for number, source in enumerate(sources, start=1):
        index = source.get("index", number)
        where = source.get("description") or source.get("title") or "?"
        lines.append(f"  [{index}] {where}")
    return "\n".join(lines)


def _approve(call: PendingCall, stdin: TextIO, stderr: TextIO, interactive: bool) -> bool:
    """Ask the person at the terminal; anything but yes (end of input included) denies."""
    arguments = call.arguments if len(call.arguments) <= 500 else call.arguments[:500] + "…"
    question = f"The agent wants to run {call.name} with {arguments}. Allow? [y/N] "
    if interactive:
        try:
            reply = input(question)
        except EOFError:
            reply = ""
    else:
        stderr.write(question)
        stderr.flush()
        reply = stdin.readline()
    allowed = reply.strip().lower() in ("y", "yes")
    _aside(stderr, "[allowed]" if allowed else "[denied]")
    return allowed


def _read(stdin: TextIO, stderr: TextIO, interactive: bool) -> str | None:
    if interactive:
        try:
            return input("you> ")  # readline editing and history where available
        except EOFError:
            return None
    line = stdin.readline()
    return line if line else None


def _aside(stderr: TextIO, text: str) -> None:
    stderr.write(text + "\n")
    stderr.flush()


def _explain(exc: ChatError) -> str:
    if exc.status == 401:
        return f"the server refused the API key (401): {exc.message}"
    if exc.status is None:
        return exc.message
    return f"{exc.status}: {exc.message}"
