"""`tenderwatch`: run the platform, import documents, inspect topics, replay dead letters, write the contracts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
from aiokafka.errors import KafkaError

_log = logging.getLogger("tenderwatch")

RUN_ENV = Path("var/run.env")  # written by `tenderwatch run`: where the platform it started listens


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tenderwatch", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole platform on this machine, with a demo, until Ctrl-C")
    run.add_argument("--var", type=Path, default=Path("var"), help="where data, logs, mail and webhooks go")
    run.add_argument("--no-demo", action="store_true", help="start the platform only")
    run.add_argument("--api-port", type=int, default=8000)

    imp = commands.add_parser(
        "import", help="send files and folders of source documents (eForms, OCDS, BOAMP, purchase plans) to ingest"
    )
    imp.add_argument("paths", nargs="+", type=Path, help="files, or folders searched for .xml, .json and .csv")

    poll = commands.add_parser("poll", help="have ingest poll a source now (ted, boamp, ocds:<host>)")
    poll.add_argument("source")
    poll.add_argument("--max-pages", type=int, default=None, help="stop after this many pages")

    topics = commands.add_parser(
        "topics", help="the platform's topics: partitions, replication, cleanup policy, consumer groups and their lag"
    )
    topics.add_argument("--partitions", action="store_true", help="also a line per partition of each group")

    dlq = commands.add_parser("dlq", help="dead-letter topics")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    replay = dlq_commands.add_parser(
        "replay", help="send the messages of a dead-letter topic back to the topics they came from"
    )
    replay.add_argument("topic", help="a dead-letter topic, such as notices.received.dlq")
    replay.add_argument("--dry-run", action="store_true", help="count what would be replayed; send and commit nothing")

    docs = commands.add_parser("docs", help="write the AsyncAPI and JSON Schema documents under schemas/")
    docs.add_argument("--check", action="store_true", help="fail if the committed documents are out of date")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "run":
        from services.platform.demo import run_platform

        return run_platform(args.var, demo=not args.no_demo, api_port=args.api_port)
    if args.command == "import":
        return asyncio.run(_import(args.paths))
    if args.command == "poll":
        return _poll(args.source, args.max_pages)
    if args.command == "topics":
        return asyncio.run(_topics(by_partition=args.partitions))
    if args.command == "dlq":
        return asyncio.run(_dlq_replay(args.topic, dry_run=args.dry_run))
    if args.command == "docs":
        from services.platform.contracts import write_documents

        return write_documents(check=args.check)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _setting(name: str, fix: str) -> str:
    """A setting from the environment, else from the file `tenderwatch run` writes for the other commands."""
    value = os.environ.get(name, "")
    if not value and RUN_ENV.exists():
        for line in RUN_ENV.read_text(encoding="utf-8").splitlines():
            key, _, found = line.partition("=")
            if key == name:
                value = found
    if not value:
        raise SystemExit(f"{name} is not set: {fix}")
    return value


async def _import(paths: Sequence[Path]) -> int:
    from services.platform.importer import import_files

    ingest_url = _setting("INGEST_URL", "set it to the ingest service's address, or run `make run` here first")
    try:
        summary = await import_files(paths, ingest_url=ingest_url)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"could not reach ingest at {ingest_url}: {exc}", file=sys.stderr)
        return 3
    for line in summary.lines():
        print(line)
    return 1 if summary.rejected else 0


def _poll(source: str, max_pages: int | None) -> int:
    ingest_url = _setting("INGEST_URL", "set it to the ingest service's address, or run `make run` here first")
    params = {"max_pages": str(max_pages)} if max_pages else {}
    print(f"polling {source} through ingest at {ingest_url} ...", file=sys.stderr, flush=True)
    try:
        answer = httpx.post(f"{ingest_url}/v1/poll/{source}", params=params, timeout=3600.0, trust_env=False)
    except httpx.HTTPError as exc:
        print(f"could not reach ingest at {ingest_url}: {exc}", file=sys.stderr)
        return 3
    report = answer.json()
    if answer.status_code != 200:
        print(f"{source}: {report.get('error')}: {report.get('detail')}", file=sys.stderr)
        return 1
    print(
        f"{report['source']}: {report['pages']} page(s), {report['documents']} document(s) with "
        f"{report['notices']} notice(s), {report['rejected']} rejected, "
        f"{'reached the end' if report['done'] else 'stopped at --max-pages'}, in {report['duration']:.1f} s"
    )
    return 0


_KAFKA_FIX = "point it at the Kafka cluster, or run `make run` here first"


def _kafka_bootstrap() -> str:
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # its connection chatter is not the command's output
    return _setting("KAFKA_BOOTSTRAP_SERVERS", _KAFKA_FIX)


async def _topics(*, by_partition: bool) -> int:
    from services.platform.topics import read_topics, table

    bootstrap = _kafka_bootstrap()
    try:
        reports = await read_topics(bootstrap)
    except KafkaError as exc:
        print(f"could not read the topics from {bootstrap}: {exc}", file=sys.stderr)
        return 3
    for line in table(reports, by_partition=by_partition):
        print(line)
    return 0


async def _dlq_replay(topic: str, *, dry_run: bool) -> int:
    from services.platform.dlq_replay import ReplayError, replay_dead_letters

    bootstrap = _kafka_bootstrap()
    try:
        summary = await replay_dead_letters(bootstrap, topic, dry_run=dry_run)
    except ReplayError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"could not replay {topic} through {bootstrap}: {exc}", file=sys.stderr)
        return 3
    for line in summary.lines():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
