"""`tenderwatch run`: the platform on its embedded default, a demo account, real alerts, until Ctrl-C."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from services.platform.sinks import MailSink, WebhookReceiver
from services.platform.supervisor import Platform
from services.runtime.processes import die_with_parent

_log = logging.getLogger("tenderwatch")

# The demo subscriber: waste collection and cleaning, design and engineering work, anywhere in France.
DEMO_SUBSCRIPTION: dict[str, Any] = {
    "name": "Déchets, propreté et maîtrise d'œuvre en France",
    "filters": {"kinds": ["competition", "planning"], "cpv": ["90000000", "71000000"], "countries": ["FR"]},
}


def api_call(base_url: str, method: str, path: str, body: Any = None, api_key: str | None = None) -> Any:
    """A JSON call to the API; raises with the API's own message on error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base_url}{path}", data=data, method=method)  # noqa: S310 - our API
    request.add_header("content-type", "application/json")
    if api_key:
        request.add_header("authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {path} answered {exc.code}: {exc.read().decode(errors='replace')}") from None


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def sample_notices() -> list[Path]:
    """The real notices bundled with ingest (see services/ingest/samples/PROVENANCE.md)."""
    folder = resources.files("services.ingest").joinpath("samples")
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith((".xml", ".json", ".csv")))


def matcher_knows(platform: Platform, count: int) -> bool:
    try:
        with urllib.request.urlopen(f"{platform.url('matcher')}/v1/index", timeout=2) as response:  # noqa: S310
            stats = json.loads(response.read())
    except (OSError, ValueError):
        return False
    return bool(stats.get("ready") and stats.get("subscriptions", 0) >= count)


def create_demo(platform: Platform, receiver: WebhookReceiver) -> dict[str, Any]:
    api = platform.url("api")
    account = api_call(api, "POST", "/v1/accounts", {"name": "Démo BTP Occitanie", "email": "demo@example.org"})
    key = account["api_key"]
    endpoint = api_call(api, "POST", "/v1/webhook-endpoints", {"url": f"{receiver.url}/hooks/demo"}, key)
    subscription = api_call(
        api,
        "POST",
        "/v1/subscriptions",
        {**DEMO_SUBSCRIPTION, "delivery": {"email": "demo@example.org", "webhook_endpoint_id": endpoint["id"]}},
        key,
    )
    return {"account": account, "endpoint": endpoint, "subscription": subscription}


def run_platform(var: Path, *, demo: bool, api_port: int) -> int:
    def _stop_on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Ctrl-C (or `kill -INT`) stops everything even when this process was started with SIGINT ignored, as by a parent
    # that ignores it or a shell without job control: Python would keep the inherited SIG_IGN, and the signal would
    # be lost.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    die_with_parent()  # when `make` or a terminal that started us goes away, stop cleanly too
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd narrates every SMTP command at INFO
    var = var.resolve()
    mail = MailSink(var / "mail")
    hooks = WebhookReceiver(var / "webhooks")
    platform = Platform(
        var,
        environment={
            "SMTP_HOST": mail.host,
            "SMTP_PORT": str(mail.port),
            "WEBHOOK_ALLOW_PRIVATE": "true",  # the demo receiver is on loopback
            "PUBLISH_OPEN_TO_ALL": "true",  # any demo account may publish notices
            "LOG_FORMAT": "json",
        },
        fixed_ports={"api": api_port},
    )
    mail.start()
    hooks.start()
    try:
        print("starting the embedded stack and the five services (a few seconds)...", flush=True)
        platform.start()
        env_file = var / "run.env"
        env_file.write_text(
            "".join(f"{k}={platform.env[k]}\n" for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "INGEST_URL")),
            encoding="utf-8",
        )
        if demo:
            created = create_demo(platform, hooks)
            wait_until(lambda: matcher_knows(platform, 1), timeout=60)
            samples = sample_notices()
            subprocess.run(  # noqa: S603 - our own command
                [sys.executable, "-m", "services.platform.cli", "import", *map(str, samples)],
                env=platform.env,
                check=True,
            )
        print(
            f"\ntenderwatch is running.\n"
            f"  API           {platform.url('api')}  (OpenAPI docs at {platform.url('api')}/docs)\n"
            f"  emails        {mail.directory}/*.eml  (SMTP sink on {mail.host}:{mail.port})\n"
            f"  webhooks      {hooks.directory}/*.json  (receiver on {hooks.url})\n"
            f"  service logs  {var / 'log'}/\n"
            f"  broker        {platform.env['KAFKA_BOOTSTRAP_SERVERS']}   (also in {env_file})",
            flush=True,
        )
        if demo:
            print(
                f"  demo account  {created['account']['id']}  API key {created['account']['api_key']}\n"
                f"  subscription  {created['subscription']['name']}\n"
                f"Import more with: .venv/bin/tenderwatch import FILE_OR_FOLDER ...\nCtrl-C stops everything.\n",
                flush=True,
            )
        seen_mail = seen_hooks = 0
        while True:
            platform.supervise_once()
            for message in mail.messages()[seen_mail:]:
                parsed = message.message()
                print(f"email   -> {', '.join(message.recipients)}: {parsed['subject']}", flush=True)
            for request in hooks.requests()[seen_hooks:]:
                notice = json.loads(request.body).get("data", {}).get("notice", {})
                print(
                    f"webhook -> {request.path}: {notice.get('notice_id')} {notice.get('title', '')[:70]}", flush=True
                )
            seen_mail, seen_hooks = len(mail.messages()), len(hooks.requests())
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        platform.stop()
        hooks.stop()
        mail.stop()
        print("stopped: no process left running.", flush=True)
