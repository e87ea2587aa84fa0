"""``starcoder-agents``: run the code loop, its agents alone, the server, the graph picture.

Progress goes to stderr for a person; results go to stdout (``--json`` for programs).
Exit codes: 0 the final code passes its tests, 1 the budget ran out without a pass,
2 bad input or a setup error (with a message saying what is wrong).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_TASK = (
    "Write a function is_palindrome(text) that returns True when text reads the same "
    "forwards and backwards, ignoring case, spaces and punctuation."
)

logger = logging.getLogger("starcoder_agents")


class CliError(Exception):
    """Bad input or setup; printed as one line, exit code 2."""


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _read_file(path: str, what: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise CliError(f"{what} file not found: {path}")
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} file {path}: {exc}") from exc


def _require_isolation():
    """The sandbox tier runs will use; exit 2 here, before any expensive work, if it is too weak."""
    from sandbox import IsolationUnavailable, require_isolation

    try:
        tier = require_isolation()
    except (IsolationUnavailable, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if not tier.full:
        _say(f"Sandbox: the {tier.name} tier, weaker than full isolation, as asked: {tier.reason}")
    return tier


def _load_model(name: str | None):
    from llms import ModelLoadError, load_model

    _say(f"Loading model {name or 'default'} ...")
    started = time.perf_counter()
    try:
        model = load_model(name)
    except ModelLoadError as exc:
        raise CliError(str(exc)) from exc
    _say(f"Loaded {model.name} ({model.engine}) in {time.perf_counter() - started:.1f}s")
    return model


# -- run -----------------------------------------------------------------------------


def _print_progress(node: str, timing: Mapping[str, Any]) -> None:
    tokens = f", {timing['output_tokens']} tokens" if timing["output_tokens"] else ""
    _say(f"[{node:<8}] iteration {timing['iteration']}  {timing['seconds']:6.1f}s{tokens}  {timing['summary']}")


def _print_result(result: dict) -> None:
    from sandbox.report import judging_summary

    review = result.get("review") or {}
    validation: Any = result.get("validation") or {}  # a ValidationReport, or nothing
    out = sys.stdout
    out.write("# Code\n" + result.get("code", "") + "\n")
    out.write("# Tests\n" + result.get("tests", "") + "\n")
    out.write("# Review\n")
    out.write(
        f"passed: {result.get('passed')}  (tests {validation.get('passed_count', 0)} passed, "
        f"{validation.get('failed_count', 0)} failed, {validation.get('errored_count', 0)} errors; "
        f"coverage {validation.get('coverage')}; isolation {validation.get('isolation')}; "
        f"{judging_summary(validation) if validation else 'not run'})\n"
    )
    if validation.get("error"):
        out.write(f"error: {validation['error']}\n")
    out.write(
        f"score: {review.get('score')}/10  model score: {review.get('model_score')}  "
        f"PEP 8 findings: {review.get('pep8_count')}  "
        f"max complexity: {(review.get('complexity') or {}).get('max_complexity')}\n"
    )
    if review.get("summary"):
        out.write(f"summary: {review['summary']}\n")
    for rec in review.get("recommendations", []):
        out.write(f"- {rec}\n")
    for item in result.get("disputed_tests", []):
        out.write(
            f"set aside: {item['test']}: expected {item['call']} == {item['expected']}, "
            f"but the code and an independent reference both gave {item['observed']}\n"
        )
    if result.get("settled"):
        out.write("stopped: the task's own tests pass; only tests the model wrote still fail\n")
    for item in result.get("contested", []):
        out.write(
            f"contested: the tests pass, but another sampled answer that agrees on every example of the task "
            f"parts from this code at {item['call']} ({item['outcomes']}); the tests cannot tell which is right\n"
        )
    out.write(
        f"attempts: {result.get('iterations')}  best: {result.get('best_iteration')}  "
        f"model: {result.get('model')}  thread: {result.get('thread_id')}\n"
    )
    if result.get("result_path"):
        out.write(f"record: {result['result_path']}\n")


def cmd_run(args: argparse.Namespace) -> int:
    from langchain_core.runnables import RunnableConfig

    from graph import Settings, build_graph
    from graph.checkpoint import CheckpointerError, open_checkpointer
    from graph.runtime import new_thread_id, run_task
    from graph.state import InvalidTaskError, check_task_input

    task_input: dict[str, Any] | None = None
    if not args.resume:
        task_input = {"task": args.task}
        if args.entry_point:
            task_input["entry_point"] = args.entry_point
        if args.tests:
            task_input["user_tests"] = _read_file(args.tests, "tests")
        if args.max_iterations is not None:
            task_input["max_iterations"] = args.max_iterations
        if args.min_score is not None:
            task_input["min_score"] = args.min_score
        try:
            check_task_input(task_input)
        except InvalidTaskError as exc:
            raise CliError(str(exc)) from exc
    elif not args.thread_id:
        raise CliError("--resume needs --thread-id of the run to continue")
    try:
        with open_checkpointer(args.checkpointer) as saver:
            resuming: RunnableConfig = {"configurable": {"thread_id": args.thread_id, "checkpoint_ns": ""}}
            if args.resume and saver.get_tuple(resuming) is None:
                raise CliError(f"thread {args.thread_id} has no checkpoints to resume")
            _require_isolation()
            model = _load_model(args.model)
            thread_id = args.thread_id or new_thread_id()
            app = build_graph(model, settings=Settings(), checkpointer=saver)
            _say(f"Thread {thread_id}")
            result = run_task(app, task_input, thread_id=thread_id, on_node=_print_progress)
    except CheckpointerError as exc:
        raise CliError(str(exc)) from exc
    if not result.get("code") and "passed" not in result:
        raise CliError(f"thread {thread_id} has no run to resume")
    total = sum(t["seconds"] for t in result.get("node_timings", []))
    _say(f"Done in {total:.1f}s: {'PASSED' if result.get('passed') else 'NOT PASSED'}")
    if args.json:
        _emit_json(result)
    else:
        _print_result(result)
    return EXIT_PASSED if result.get("passed") else EXIT_FAILED


# -- validate / review alone -------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from graph.config import Settings
    from roles.checks import check_attempt
    from sandbox.report import judging_summary

    code, tests = _read_file(args.code_file, "code"), _read_file(args.tests_file, "tests")
    tier = _require_isolation()
    report, _ = check_attempt(code, tests, Settings())
    if args.json:
        _emit_json({**report, "sandbox": tier.as_dict()})
    else:
        sys.stdout.write(
            f"passed: {report['passed']}  ({report['passed_count']} passed, {report['failed_count']} failed, "
            f"{report['errored_count']} errors, {report['duration_s']:.2f}s)\n"
            f"coverage: {report['coverage']}\nisolation: {report['isolation']}\n"
            f"{judging_summary(report)}\n"
            f"limits: processes by {tier.process_limit}; memory by {tier.memory_limit}\n"
        )
        if report["error"]:
            sys.stdout.write(f"error: {report['error']}\n")
        for failure in report["failures"]:
            sys.stdout.write(f"\n{failure['test']}: {failure['message']}\n{failure['traceback']}\n")
    return EXIT_PASSED if report["passed"] else EXIT_FAILED


class _NoModel:
    """A provider for commands that must not call a model (static review, the graph picture)."""

    name = "none"

    def for_role(self, role: str):
        raise RuntimeError(f"no model is loaded for the {role} role")


def cmd_review(args: argparse.Namespace) -> int:
    from graph.config import Settings
    from roles.checks import check_attempt, failed_before_running
    from roles.context import CallContext
    from roles.review import review_code

    code = _read_file(args.code_file, "code")
    if args.tests:
        _require_isolation()
        validation, _ = check_attempt(code, _read_file(args.tests, "tests"), Settings())
    else:
        validation = failed_before_running("no tests were given")
    model = _NoModel() if args.static else _load_model(args.model)
    report = review_code(
        CallContext(model=model, settings=Settings()),
        task=args.task or "Review this module.",
        code=code,
        validation=validation,
        ask_model=not args.static,
    )
    if args.json:
        _emit_json({**report, "validation": validation})
    else:
        _print_result(
            {"code": "", "tests": "", "review": report, "validation": validation, "passed": validation["passed"]}
        )
    return EXIT_PASSED


# -- graph, models, serve --------------------------------------------------------------


def cmd_graph(args: argparse.Namespace) -> int:
    from graph import build_graph
    from graph.picture import GraphPictureError, draw_graph

    try:
        picture = draw_graph(build_graph(_NoModel()), args.format)
    except GraphPictureError as exc:
        raise CliError(str(exc)) from exc
    if isinstance(picture, str):
        sys.stdout.write(picture + "\n")
        return EXIT_PASSED
    output = Path(args.output or "graph.png")
    output.write_bytes(picture)
    _say(f"wrote {output}")
    return EXIT_PASSED


def cmd_models(args: argparse.Namespace) -> int:
    from llms import ModelLoadError, check_model, list_models

    if args.check:
        try:
            info = check_model(args.check)
        except ModelLoadError as exc:
            raise CliError(str(exc)) from exc
        if args.json:
            _emit_json(info)
        else:
            sys.stdout.write("\n".join(f"{k}: {v}" for k, v in info.items()) + "\n")
        return EXIT_PASSED
    rows = list_models()
    if args.json:
        _emit_json(rows)
        return EXIT_PASSED
    for row in rows:
        status = "available" if row.get("available") else "not available"
        sys.stdout.write(f"{row['name']:<32} {status:<14} {row.get('source', '')}\n")
        if row.get("reason"):
            sys.stdout.write(f"{'':<32} {row['reason']}\n")
    return EXIT_PASSED


def cmd_bench(args: argparse.Namespace) -> int:
    from benchmarks import humaneval
    from llms import ModelLoadError

    _require_isolation()
    try:
        return humaneval.main(args)
    except (ModelLoadError, humaneval.BenchError) as exc:
        raise CliError(str(exc)) from exc


def cmd_compare(args: argparse.Namespace) -> int:
    from benchmarks import compare

    try:
        return compare.main(args)
    except compare.CompareError as exc:
        raise CliError(str(exc)) from exc


def cmd_budget(args: argparse.Namespace) -> int:
    from benchmarks import budget
    from benchmarks.compare import CompareError

    try:
        return budget.main(args)
    except CompareError as exc:
        raise CliError(str(exc)) from exc


def cmd_merge(args: argparse.Namespace) -> int:
    from benchmarks import merge
    from benchmarks.compare import CompareError

    try:
        return merge.main(args)
    except CompareError as exc:
        raise CliError(str(exc)) from exc


def cmd_serve(args: argparse.Namespace) -> int:
    from service.exposure import InsecureServerError, check_exposure
    from service.limits import api_keys_from_env

    # Checked before anything heavy is imported or loaded: an open public server
    # is refused at once.
    try:
        check_exposure(args.host, api_key_set=bool(api_keys_from_env()), insecure=args.insecure)
    except InsecureServerError as exc:
        raise CliError(str(exc)) from exc

    _require_isolation()  # the server's routes run untrusted code too: refuse before loading
    from llms import ModelLoadError
    from server import serve

    try:
        serve(
            host=args.host,
            port=args.port,
            model=args.model,
            checkpointer=args.checkpointer,
            insecure=args.insecure,
            broker=args.broker,
        )
    except (ModelLoadError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    return EXIT_PASSED


def cmd_worker(args: argparse.Namespace) -> int:
    from graph.checkpoint import is_postgres_url
    from service.jobs import QueueSettings

    queue = QueueSettings(**{k: v for k, v in (("broker_url", args.broker), ("queue", args.queue)) if v})
    if not queue.enabled:
        raise CliError("a worker needs a broker: --broker amqp://USER:PASSWORD@HOST:5672// or STARCODER_BROKER_URL")
    if not is_postgres_url(args.checkpointer):
        raise CliError("a worker needs the API replicas' PostgreSQL checkpointer: --checkpointer postgresql://...")
    _require_isolation()  # runs execute generated code: refuse before loading
    from service.worker import run_worker

    run_worker(_load_model(args.model), checkpointer_url=args.checkpointer, queue=queue, concurrency=args.concurrency)
    return EXIT_PASSED


# -- parser ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="starcoder-agents", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="turn a task into tested, reviewed code")
    run.add_argument("task", nargs="?", default=DEFAULT_TASK, help="the task in plain words")
    run.add_argument("--json", action="store_true", help="print one JSON result object")
    run.add_argument("--model", help="model preset, Hub id or local folder (default: the packaged model)")
    run.add_argument("--max-iterations", type=int, help="refinements allowed after the first attempt")
    run.add_argument("--min-score", type=float, help="review score a passing attempt needs (0-10)")
    run.add_argument("--entry-point", help="name of the main function")
    run.add_argument("--tests", help="a file of pytest tests the code must also pass")
    run.add_argument("--thread-id", help="checkpoint thread id (default: a new one)")
    run.add_argument("--resume", action="store_true", help="continue the thread given by --thread-id")
    run.add_argument(
        "--checkpointer", help="SQLite file, 'memory', or a postgres:// URL (default: a SQLite file in the data folder)"
    )
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="run a test file against a code file in the sandbox")
    validate.add_argument("code_file")
    validate.add_argument("tests_file")
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(func=cmd_validate)

    review = sub.add_parser("review", help="review a code file (PEP 8, complexity, coverage, a model's view)")
    review.add_argument("code_file")
    review.add_argument("--tests", help="tests to run for coverage")
    review.add_argument("--task", help="what the code is meant to do")
    review.add_argument("--model", help="model for the review")
    review.add_argument("--static", action="store_true", help="skip the model's review")
    review.add_argument("--json", action="store_true")
    review.set_defaults(func=cmd_review)

    graph = sub.add_parser("graph", help="the graph as Mermaid, ASCII or PNG (offline)")
    graph.add_argument("--format", choices=["mermaid", "ascii", "png"], default="mermaid")
    graph.add_argument("--output", help="PNG file to write (default graph.png)")
    graph.set_defaults(func=cmd_graph)

    models = sub.add_parser("models", help="list model presets, or load one with --check")
    models.add_argument("--check", metavar="NAME", help="load NAME, generate, and report speed")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="benchmark", required=True, parser_class=_Parser)
    from benchmarks.budget import build_parser as budget_parser
    from benchmarks.compare import build_parser as compare_parser
    from benchmarks.humaneval import build_parser as humaneval_parser
    from benchmarks.merge import build_parser as merge_parser

    humaneval_parser(bench_sub.add_parser("humaneval", help="HumanEval pass@1: strongest single call, best of k, loop"))
    bench_sub.choices["humaneval"].set_defaults(func=cmd_bench)
    humaneval_parser(bench_sub.add_parser("plain", help="the same rows on tasks in plain words"), dataset="plain")
    bench_sub.choices["plain"].set_defaults(func=cmd_bench)
    compare_parser(bench_sub.add_parser("compare", help="saved HumanEval runs against a baseline, problem by problem"))
    bench_sub.choices["compare"].set_defaults(func=cmd_compare)
    budget_parser(bench_sub.add_parser("budget", help="replay saved loop runs under output-token budgets"))
    bench_sub.choices["budget"].set_defaults(func=cmd_budget)
    merge_parser(bench_sub.add_parser("merge", help="a saved run with more first-attempt candidates"))
    bench_sub.choices["merge"].set_defaults(func=cmd_merge)

    serve = sub.add_parser("serve", help="serve the graph and the agents over HTTP")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; a non-loopback one needs STARCODER_API_KEY"
    )
    serve.add_argument(
        "--insecure",
        action="store_true",
        help="serve a non-loopback address without an API key: anyone who reaches it can run code here",
    )
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--model", help="model to load at start")
    serve.add_argument("--checkpointer", help="SQLite file, 'memory', or a postgres:// URL")
    serve.add_argument(
        "--broker", help="send /lg runs to workers through this broker (amqp://...; default $STARCODER_BROKER_URL)"
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the /lg runs that API replicas queue (needs a broker and PostgreSQL)")
    worker.add_argument("--model", help="model to load at start")
    worker.add_argument(
        "--checkpointer",
        default=os.environ.get("STARCODER_CHECKPOINTER"),
        help="the postgres:// URL the API replicas use (default $STARCODER_CHECKPOINTER)",
    )
    worker.add_argument("--broker", help="amqp://USER:PASSWORD@HOST:5672// (default $STARCODER_BROKER_URL)")
    worker.add_argument("--queue", help="queue name (default $STARCODER_QUEUE or starcoder-runs)")
    worker.add_argument("--concurrency", type=int, default=1, help="runs at once in this worker (default 1)")
    worker.set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except CliError as exc:
        _say(f"starcoder-agents: error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("interrupted; resume with --resume --thread-id")
        return 130


if __name__ == "__main__":
    sys.exit(main())
