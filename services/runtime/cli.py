"""`tenderwatch`: run the platform, import documents, write the contract documents."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from schemas import DOCUMENT_HEADERS, Topic

_log = logging.getLogger("tenderwatch")

_RUN_ENV = Path("var/run.env")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tenderwatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole platform on this machine, with a demo, until Ctrl-C")
    run.add_argument("--var", type=Path, default=Path("var"), help="where data, logs, mail and webhooks go")
    run.add_argument("--no-demo", action="store_true", help="start the platform only")
    run.add_argument("--api-port", type=int, default=8000)

    imp = commands.add_parser("import", help="send source documents (eForms XML, ...) to ingest")
    imp.add_argument("files", nargs="+", type=Path)

    docs = commands.add_parser("docs", help="write the AsyncAPI and JSON Schema documents under schemas/")
    docs.add_argument("--check", action="store_true", help="fail if the committed documents are out of date")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "run":
        from services.runtime.demo import run_platform

        return run_platform(args.var, demo=not args.no_demo, api_port=args.api_port)
    if args.command == "import":
        return asyncio.run(_import(args.files))
    if args.command == "docs":
        from services.runtime.contracts import write_documents

        return write_documents(check=args.check)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _bootstrap_servers() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not servers and _RUN_ENV.exists():
        for line in _RUN_ENV.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == "KAFKA_BOOTSTRAP_SERVERS":
                servers = value
    if not servers:
        raise SystemExit(
            "no Kafka broker to send to: set KAFKA_BOOTSTRAP_SERVERS, or start the platform with `make run` "
            "in this folder first"
        )
    return servers


async def _import(files: Sequence[Path]) -> int:
    from aiokafka import AIOKafkaProducer

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap_servers(), acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for number, path in enumerate(files, 1):
            data = path.read_bytes()
            await producer.send_and_wait(
                Topic.DOCUMENTS_RECEIVED.value,
                data,
                key=hashlib.sha256(data).hexdigest().encode(),
                headers=[
                    (DOCUMENT_HEADERS.FILENAME, path.name.encode()),
                    (DOCUMENT_HEADERS.ORIGIN, b"file"),
                    (DOCUMENT_HEADERS.CONTENT_TYPE, b"application/xml" if path.suffix == ".xml" else b""),
                ],
            )
            print(f"[{number}/{len(files)}] sent {path} ({len(data)} bytes)")
    finally:
        await producer.stop()
    print(
        f"{len(files)} document(s) sent to ingest. A document that cannot be read lands in "
        f"{Topic.DOCUMENTS_RECEIVED.dlq} with the reason."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
