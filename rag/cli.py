"""The `rag` command: index, add, ask, chat, eval, bench, doctor, ui, serve.

A thin adapter: parses arguments, calls the library, turns RagError into a
message and a non-zero exit. Heavy imports happen inside the commands so that
`rag --help` answers instantly.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, RagError
from .present import print_answer, print_sources

if TYPE_CHECKING:
    from .config import Settings


def _settings(args: argparse.Namespace, **given: object) -> Settings:
    """Settings from the environment, with the folders given on the command line and
    ``given`` (those not None) over them."""
    from .config import Settings

    overrides = {k: v for k, v in given.items() if v is not None}
    if getattr(args, "corpus_dir", None):
        overrides["corpus_dir"] = Path(args.corpus_dir)
    if getattr(args, "index_dir", None):
        overrides["index_dir"] = Path(args.index_dir)
    return Settings(**overrides)


def cmd_index(args: argparse.Namespace) -> int:
    from . import build_index

    settings = _settings(args)
    if args.ray:
        from .cluster.ingest import ingest

        report = ingest(settings, args.ray)
        print(f"Indexed {report.documents} documents as {report.chunks} chunks into Milvus at {report.uri} "
              f"({report.seconds:.1f} s; work ran on {len(report.nodes)} Ray node(s)).")
        return 0
    index = build_index(settings, progress=True)
    print(f"Indexed {len(index.docs)} documents as {_count(index)} chunks in {index.directory}.")
    return 0


def _count(index) -> int:  # noqa: ANN001 (an Index, whose chunks are a list, or a store, which has a length)
    return len(index.chunks) if isinstance(getattr(index, "chunks", None), list) else len(index)


def cmd_add(args: argparse.Namespace) -> int:
    from . import build_index
    from .corpus import add_sources

    settings = _settings(args)
    result = add_sources(args.sources, settings.corpus_dir)
    for path in result.added:
        print(f"Added {path.name}")
    for rejected in result.rejected:
        print(f"warning: {rejected.name} was not added: {rejected.reason}.", file=sys.stderr)
    if result.added:
        index = build_index(settings, progress=True)
        print(f"Indexed {len(index.docs)} documents as {_count(index)} chunks in {index.directory}.")
    return 1 if result.rejected else 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .engine import get_engine
    from .prompt import clean_question

    clean_question(args.question)  # fail fast, before seconds of model loading
    engine = get_engine(_settings(args), progress=True)
    answer = engine.ask(args.question, k=args.k, since=args.since, until=args.until, sources=args.source,
                        today=args.today)
    print_answer(answer)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from .answer import Delta, Final, Status
    from .engine import get_engine

    engine = get_engine(_settings(args), progress=True)
    print(f"Chatting over {len(engine.index.docs)} articles. Ask a question; empty line or Ctrl-D to quit.")
    history: list[tuple[str, str]] = []
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not question:
            return 0
        try:
            print("bot> ", end="", flush=True)
            raw, answer = [], None
            for event in engine.events(question, history=history):
                if isinstance(event, Delta):
                    raw.append(event.text)
                    print(event.text, end="", flush=True)
                elif isinstance(event, Status):  # a later look: its raw text is not shown
                    print(f"\n({event.text})", end="", flush=True)
                elif isinstance(event, Final):
                    answer = event.answer
            print()
            assert answer is not None
            if answer.text.strip() != "".join(raw).strip():  # citation check changed something
                print("\nchecked> ", end="")
                print_answer(answer)
            else:
                print_sources(answer)
            history.append((question, answer.text))
        except RagError as exc:
            print(f"\nerror: {exc}")


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import eval_sets
    from .evaluate.own import targets_met

    settings = _settings(args)
    if args.without:
        off = ",".join(sorted(settings.rules_off | set(args.without)))  # validated by name
        settings = type(settings)(**{**settings.model_dump(), "rules_off": off})
    reports = eval_sets(settings, args.sets or ["own"], limit=args.limit,
                        out=Path(args.out) if args.out else None,
                        llm_cache=Path(args.llm_cache) if args.llm_cache else None)
    missed = [r.name for r in reports if r.totals and not targets_met(r.totals)]
    return 1 if args.strict and missed else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    run_bench(_settings(args), quick=args.quick, out=Path(args.out), eval_limit=args.eval_limit)
    print(f"\nSaved to {args.out}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    rows = report(_settings(args), live=not args.no_llm)
    for section, line, ok in rows:
        print(f"{'ok ' if ok else 'BAD'} {section:<9} {line}")
    return 0 if all(ok for _, _, ok in rows) else 1


def cmd_ui(args: argparse.Namespace) -> int:
    from .web.serve import launch

    launch(_settings(args, ui_host=args.host, ui_port=args.port), share=args.share)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    if args.ray:
        from .api import api_settings
        from .cluster.serve import serve_forever

        settings = api_settings(_settings(args), args.host, args.port, args.api_key,
                                True if args.allow_public else None)
        serve_forever(settings, args.ray, args.replicas)
        return 0
    if args.replicas != 1:
        raise InputError("--replicas needs --ray ADDRESS: without Ray, one process answers.")
    from .api import serve

    serve(_settings(args), host=args.host, port=args.port, api_key=args.api_key,
          allow_public=True if args.allow_public else None)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions about a folder of news articles, "
                                     "offline, with citations to the exact passages.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show progress and decisions")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str, corpus: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        if corpus:
            p.add_argument("--corpus-dir", help="folder of articles (default: seeds/ or $RAG_CORPUS_DIR)")
        p.add_argument("--index-dir", help="index folder (default: index/ or $RAG_INDEX_DIR)")
        return p

    _article_commands(sub, add)
    _measuring_commands(add)
    _serving_commands(add)
    return parser


_Add = Callable[..., argparse.ArgumentParser]


def _article_commands(sub: Any, add: _Add) -> None:
    """index, add, ask, chat: the commands over the articles."""
    p = sub.add_parser("index", help="build or update the index", description="Build or update the index.")
    p.add_argument("corpus_dir", nargs="?", help="folder of articles (default: seeds/)")
    p.add_argument("--index-dir", help="index folder (default: index/)")
    p.add_argument("--ray", metavar="ADDRESS", help="run the ingestion as a Ray Data pipeline on the Ray cluster at "
                   "ADDRESS (host:port), writing into Milvus (RAG_MILVUS_URI, a server); needs the cluster extra")
    p.set_defaults(func=cmd_index)

    p = add("add", "add articles: files, folders, RSS/Atom feeds (file or URL) or web pages (URL); "
                   "then update the index", corpus=True)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="a file, a folder of them, a feed or an address")
    p.set_defaults(func=cmd_add)

    p = add("ask", "answer one question", corpus=True)
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help="passages to give the model")
    p.add_argument("--since", help="only articles published on or after this date (YYYY-MM-DD)")
    p.add_argument("--until", help="only articles published on or before this date (YYYY-MM-DD)")
    p.add_argument("--source", action="append", help="only articles from this outlet (repeat for several)")
    p.add_argument("--today", help="the date 'last week' and 'before October 30' count from (default: the newest "
                                   "article's date)")
    p.set_defaults(func=cmd_ask)

    add("chat", "a conversation in the terminal, with streaming", corpus=True).set_defaults(func=cmd_chat)


def _measuring_commands(add: _Add) -> None:
    """eval, bench, doctor: the commands that measure and check."""
    p = add("eval", "run question sets and print scores per set and per question type", corpus=True)
    p.add_argument("--set", dest="sets", action="append", metavar="PATH",
                   help="a folder holding corpus/ and questions.jsonl, or 'own' (the bundled set, the default); "
                        "repeat to run several sets in one table")
    p.add_argument("--limit", type=int, help="only the first N questions of each set")
    p.add_argument("--out", help="also write the report and every question's result as JSON here")
    p.add_argument("--llm-cache", metavar="FILE", help="replay model replies saved in this JSON file and save new "
                   "ones (latencies of replayed replies are not real)")
    p.add_argument("--strict", action="store_true", help="exit 1 when the bundled set misses a target")
    p.add_argument("--without", action="append", metavar="RULE", help="switch a verification or answer rule off, "
                   "to measure what it is worth (repeatable; the names are in rag.verify.RULES)")
    p.set_defaults(func=cmd_eval)

    p = add("bench", "measure speed: baseline vs ours, in one run", corpus=True)
    p.add_argument("--quick", action="store_true", help="small sizes, one question: a smoke run of about a minute")
    p.add_argument("--eval-limit", type=int, help="only the first N evaluation questions for answer latency")
    p.add_argument("--out", default="bench.json", help="where to save the table as JSON (default bench.json)")
    p.set_defaults(func=cmd_bench)

    p = add("doctor", "check the machine, the models and the index; the first thing to run when something is wrong",
            corpus=True)
    p.add_argument("--no-llm", action="store_true", help="skip starting the language model")
    p.set_defaults(func=cmd_doctor)


def _serving_commands(add: _Add) -> None:
    """ui, serve: the front ends that stay up."""
    p = add("ui", "start the web UI", corpus=True)
    p.add_argument("--host", help="address to bind (default: RAG_UI_HOST or GRADIO_SERVER_NAME, else 127.0.0.1, "
                                  "this machine only)")
    p.add_argument("--port", help="port (default: RAG_UI_PORT or GRADIO_SERVER_PORT, else 7860)")
    p.add_argument("--share", action="store_true", help="create a public Gradio share link (off by default)")
    p.set_defaults(func=cmd_ui)

    p = add("serve", "serve an OpenAI-compatible HTTP API (POST /v1/chat/completions)", corpus=True)
    p.add_argument("--host", help="address to bind (default: RAG_API_HOST, else 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, help="port (default: RAG_API_PORT, else 8000)")
    p.add_argument("--api-key", help="key clients must send as 'Authorization: Bearer KEY' (default: RAG_API_KEY; "
                   "prefer the variable: other users can read a command line)")
    p.add_argument("--allow-public", action="store_true",
                   help="allow a non-loopback --host without a key (same as RAG_API_ALLOW_PUBLIC=1)")
    p.add_argument("--ray", metavar="ADDRESS", help="serve from the Ray cluster at ADDRESS (host:port) with Ray Serve: "
                   "the same API, answered by --replicas LLM replicas (one per node); needs the cluster extra")
    p.add_argument("--replicas", type=int, default=1, help="LLM replicas with --ray (default 1)")
    p.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
