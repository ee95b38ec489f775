"""`teg dump [DIR]`: capture every readable GET endpoint of the catalog into a folder, redacted.

The folder is laid out like the captures tegkit is built from (one file per endpoint, named
after its path: /api/meters/aggregates -> `meters.aggregates.json`):

- `NAME.json`: the body of a 2xx answer, redacted, as JSON. `tegkit.parse_response`
  reads it back with the endpoint's method and path from the index.
- `NAME.err`: an error answer: the status line, the content type, a blank line, the body.
- `index.json`: {"format": "tegkit-dump/1", "taken_at", "firmware_version", "files":
  [{"file", "method", "path", "template", "status"}], "skipped": [{"path", "reason"}]}.
  `path` is the concrete path as requested, with serials redacted the same way as bodies.

Parameterised endpoints are read only where the parameters are known: meter serials from
/api/meters, inverter brands from /api/solars (percent-encoded into the path). Serials,
DIN, emails, names, IP and MAC addresses and tokens are replaced with numbered placeholders
(see `tegkit.cli.redact`).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from pathlib import Path
from typing import Any, Final

import click
from rich.console import Console

from tegkit import catalog
from tegkit._private_file import make_private_dir
from tegkit.catalog import Effect
from tegkit.cli import app
from tegkit.cli.output import Output, json_option
from tegkit.cli.redact import Redactor, kind_of_key
from tegkit.client import Gateway
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    CertificateMismatchError,
    SystemStoppedError,
)

FORMAT: Final = "tegkit-dump/1"
# Paths whose parameters we can learn, and the list endpoint that names them.
_PARAMETER_SOURCES: Final = {"serial": "/api/meters", "brand": "/api/solars"}


def file_stem(path: str) -> str:
    """/api/meters/aggregates -> meters.aggregates (the captures' naming).

    >>> file_stem("/api/meters/<<SERIAL_1>>/cts")
    'meters.SERIAL_1.cts'
    """
    stem = path.removeprefix("/api/").strip("/").replace("/", ".")
    return stem.replace("<<", "").replace(">>", "")


def readable() -> list[catalog.Endpoint]:
    """Every local GET that only reads (no side effects), in catalog order."""
    return [
        e
        for e in catalog.endpoints("local")
        if e.method == "GET" and e.effect is Effect.READ and e.path != "/api/{resource}"
    ]


async def _known_parameters(gw: Gateway) -> dict[str, list[str]]:
    """Parameter name -> the values its list endpoint names (meter serials, inverter brands)."""
    known: dict[str, list[str]] = {}
    for name, source in _PARAMETER_SOURCES.items():
        try:
            items = await gw.request("GET", source)
        except ApiError as exc:
            if isinstance(exc, AuthenticationError):
                raise
            continue
        if isinstance(items, list):
            values = [i.get(name) for i in items if isinstance(i, dict)]
            known[name] = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
    return known


class _Writer:
    """Collects every answer, redacted by meaning (pass 1), and writes the files only when all
    are in: then every value redacted anywhere is taken out of every file (pass 2)."""

    def __init__(self, folder: Path, redactor: Redactor) -> None:
        self.folder = folder
        self.redactor = redactor
        self.files: list[dict[str, Any]] = []
        self._bodies: list[tuple[dict[str, str], Any, bool]] = []

    def write(
        self, template: str, path: str, params: dict[str, str], status: int, body: Any, error: bool
    ) -> None:
        for name, value in params.items():
            kind = kind_of_key(name)  # a serial in a path gets the placeholder of its body
            if kind is not None:
                self.redactor.placeholder(kind, value)
        redacted = self.redactor.document(path, body)
        self.files.append({"method": "GET", "path": path, "template": template, "status": status})
        self._bodies.append((params, redacted, error))

    def flush(self) -> None:
        """Write every collected answer, scrubbed of every value redacted in any of them."""
        written: list[dict[str, Any]] = []
        for entry, (params, body, error) in zip(self.files, self._bodies, strict=True):
            path = entry["path"]
            for value in params.values():
                safe = self.redactor.scrub_text(value)  # a serial's placeholder; a brand as is
                quoted = urllib.parse.quote(value, safe="")
                if quoted != value:  # sent percent-encoded: keep it encoded
                    path = path.replace(quoted, urllib.parse.quote(safe, safe=""))
                path = path.replace(value, safe)
            stem = file_stem(path)
            name = f"{stem}.err" if error else f"{stem}.json"
            scrubbed = self.redactor.scrub(body)
            text = "" if scrubbed is None else json.dumps(scrubbed, indent=2, ensure_ascii=False)
            if error:
                content_type = "application/json" if text else "text/plain"
                text = f"HTTP/1.1 {entry['status']}\ncontent-type: {content_type}\n\n{text}"
            (self.folder / name).write_text(text + ("\n" if text else ""), encoding="utf-8")
            written.append({"file": name, **entry, "path": path})
        self.files = written
        self._bodies.clear()


def _error_body(exc: ApiError) -> dict[str, Any] | None:
    if isinstance(exc, SystemStoppedError):
        return None  # a stopped system answers 502 with an empty body
    return {"code": exc.code, "error": exc.error, "message": exc.message}


async def _dump(settings: app.Settings, folder: Path) -> dict[str, Any]:
    redactor = Redactor()
    writer = _Writer(folder, redactor)
    skipped: list[dict[str, str]] = []
    firmware: str | None = None
    async with settings.gateway() as gw:
        known = await _known_parameters(gw)
        for serial in known.get("serial", []):
            redactor.placeholder("SERIAL", serial)  # known before any body that uses it
        for endpoint in readable():
            if endpoint.params:
                values = known.get(endpoint.params[0]) if len(endpoint.params) == 1 else None
                if not values:
                    skipped.append({"path": endpoint.path, "reason": "parameters not known"})
                    continue
                calls = [({endpoint.params[0]: v}) for v in values]
            else:
                calls = [{}]
            for params in calls:
                path = endpoint.format(**params)
                try:
                    reply = await gw.request_raw("GET", path)
                except (AuthenticationError, CertificateMismatchError):
                    raise  # every later request would fail the same way
                except ApiError as exc:
                    writer.write(
                        endpoint.path, path, params, exc.status, _error_body(exc), error=True
                    )
                    continue
                body = json.loads(reply.body) if reply.body.strip() else None
                writer.write(endpoint.path, path, params, reply.status, body, error=False)
                if path == "/api/status" and isinstance(body, dict):
                    firmware = body.get("version")
    writer.flush()
    index = {
        "format": FORMAT,
        "taken_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "firmware_version": firmware,
        "files": writer.files,
        "skipped": skipped,
    }
    (folder / "index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
    errors = sum(1 for f in writer.files if f["file"].endswith(".err"))
    return {
        "directory": str(folder),
        "files": len(writer.files),
        "errors": errors,
        "skipped": len(skipped),
        "firmware_version": firmware,
    }


def _render(console: Console, data: dict[str, Any]) -> None:
    console.print(
        f"Wrote {data['files']} endpoints to {data['directory']} "
        f"({data['errors']} error answers, {data['skipped']} skipped); see index.json. "
        "Serials, names and addresses are redacted.",
        soft_wrap=True,
    )


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
@json_option
@click.pass_context
def dump(ctx: click.Context, directory: Path | None, force: bool) -> Output:
    """Save every readable endpoint to a folder (one file each, redacted) for a bug report.

    Files are named like the captures (meters.aggregates.json); error answers are .err
    files; index.json lists method, path and status of each.

    \b
    Example:
      teg dump                      # into ./teg-dump-YYYYmmdd-HHMMSS
      teg dump /tmp/my-gateway
    """
    if directory is None:
        directory = Path(f"teg-dump-{dt.datetime.now():%Y%m%d-%H%M%S}")
    if directory.exists() and any(directory.iterdir()) and not force:
        raise click.UsageError(f"{directory} is not empty; choose another folder or pass --force")
    make_private_dir(directory)  # the dump describes the site: for its owner to share
    return Output(app.run(_dump(app.settings(ctx), directory)), _render)
