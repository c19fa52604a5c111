"""Write grok_nb's blocking facade and its batch builder's methods from the async core, so they never drift.

    .venv/bin/python scripts/make_sync.py          # (re)write the files
    .venv/bin/python scripts/make_sync.py --check  # exit 1 and name the files that would change

From ``AsyncClient`` (grok_nb/client.py) it writes ``grok_nb/sync_client.py``: ``Client``, each method
with the async twin's real signature and docstring, each running the twin on the client's loop thread;
and ``SyncBatch``, the blocking face of ``BatchJob``. From ``AsyncClient.generate/edit/extend`` it writes
``grok_nb/runtime/batch_requests.py``: the batch builder's methods with the same arguments (less ``wait``
and ``on_update``). The loop thread, closing and Ctrl+C are written by hand (``SyncClientBase`` and
``SyncBatchBase`` in client.py). tests/client/test_parity.py fails when regenerating would change a file.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "grok_nb" / "client.py"
BATCH = ROOT / "grok_nb" / "runtime" / "batch.py"
SYNC_OUT = ROOT / "grok_nb" / "sync_client.py"
REQUESTS_OUT = ROOT / "grok_nb" / "runtime" / "batch_requests.py"

HEADER = "# Written by scripts/make_sync.py from {source}: do not edit, run the script.\n"
#: The batch builder's methods: the client's job methods, without what only a single job takes.
BUILDER = ("generate", "edit", "extend")
BUILDER_DROPS = ("wait", "on_update")
#: What a BatchJob holds as plain attributes, shown on its blocking face.
BATCH_ATTRIBUTES = {
    "batch_id": ("str | None", "The service's id of the batch, once created."),
    "name": ("str", "The batch's name."),
    "runs": ("list[Run]", "The runs, in the order they were added (live: they fill in as results arrive)."),
    "state": ("BatchState | None", "The last counters read from the server."),
}
#: BatchJob methods the blocking face leaves out: waits on the loop's own objects, or the async side's closing.
BATCH_SKIP = {"handle", "listen", "aclose", "attach", "wait"}


def _class(path: Path, name: str) -> ast.ClassDef:
    tree = ast.parse(path.read_text())
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)


def _methods(cls: ast.ClassDef) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _is_property(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list)


def _doc(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, indent: str = "        ") -> str:
    """The docstring as written in the source (methods are indented alike on both sides, so ``__doc__`` is equal)."""
    doc = ast.get_docstring(fn, clean=False) or ""
    return f'{indent}"""{doc}"""\n'


def _signature(fn: ast.FunctionDef | ast.AsyncFunctionDef, drop: tuple[str, ...] = ()) -> ast.arguments:
    args = fn.args
    keep = [a for a in args.args if a.arg not in drop]
    defaults = dict(zip([a.arg for a in args.args][len(args.args) - len(args.defaults):], args.defaults, strict=True))
    kwonly = [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if a.arg not in drop]
    return ast.arguments(posonlyargs=args.posonlyargs, args=keep,
                         vararg=args.vararg, kwonlyargs=[a for a, _ in kwonly], kw_defaults=[d for _, d in kwonly],
                         kwarg=args.kwarg, defaults=[defaults[a.arg] for a in keep if a.arg in defaults])


def _indented(doc: str, indent: str = "        ") -> str:
    """A docstring's text as it sits in a method: every line after the first indented."""
    return "\n".join((indent + line) if line and i else line for i, line in enumerate(doc.splitlines())) + (
        "\n" + indent if doc.endswith("\n") else "")


def _line(head: str, args: str, tail: str = ")") -> str:
    """``head(args)tail`` as one line of at most 120 characters, else one argument a line."""
    text = f"{head}{args}{tail}\n"
    if len(text) <= 121 or not args:
        return text
    indent = " " * (len(head) - len(head.lstrip()) + 4)
    return head + "\n" + "".join(f"{indent}{a},\n" for a in args.split(", ")) + indent[4:] + tail + "\n"


def _call_args(args: ast.arguments, override: dict[str, str] | None = None) -> str:
    """The arguments that pass a signature's parameters on unchanged (``override`` replaces some values)."""
    override = override or {}
    parts = [a.arg for a in [*args.posonlyargs, *args.args] if a.arg != "self"]
    if args.vararg is not None:
        parts.append(f"*{args.vararg.arg}")
    parts += [f"{a.arg}={override.get(a.arg, a.arg)}" for a in args.kwonlyargs]
    parts += [f"{name}={value}" for name, value in override.items() if name not in {a.arg for a in args.kwonlyargs}]
    if args.kwarg is not None:
        parts.append(f"**{args.kwarg.arg}")
    return ", ".join(parts)


def _params(args: ast.arguments) -> list[str]:
    """Each parameter of a signature as written (``name: annotation = default``)."""
    def one(arg: ast.arg, default: ast.expr | None) -> str:
        text = arg.arg + (f": {ast.unparse(arg.annotation)}" if arg.annotation else "")
        if default is not None:
            text += (" = " if arg.annotation else "=") + ast.unparse(default)
        return text

    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = [one(a, d) for a, d in zip(positional, defaults, strict=True)]
    if args.posonlyargs:
        out.insert(len(args.posonlyargs), "/")
    if args.vararg is not None:
        out.append("*" + one(args.vararg, None))
    elif args.kwonlyargs:
        out.append("*")
    out += [one(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg is not None:
        out.append("**" + one(args.kwarg, None))
    return out


def _def(fn: ast.FunctionDef | ast.AsyncFunctionDef, args: ast.arguments, returns: str | None, body: str,
         decorators: list[str]) -> str:
    head = "".join(f"    @{d}\n" for d in decorators)
    params = _params(args)
    tail = f" -> {returns}:" if returns else ":"
    text = f"    def {fn.name}({', '.join(params)}){tail}\n"
    if len(text) > 121:  # one parameter a line, as the hand-written client does
        text = f"    def {fn.name}(\n" + "".join(f"        {p},\n" for p in params) + f"    ){tail}\n"
    return head + text + _doc(fn) + body


def _decorators(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [ast.unparse(d).replace("'", '"') for d in fn.decorator_list
            if not (isinstance(d, ast.Name) and d.id == "property")]


def _attribute_docs(cls: ast.ClassDef, source: str) -> dict[str, tuple[str, str]]:
    """Class-level annotated attributes and the comment beside each: (annotation, doc)."""
    lines = source.splitlines()
    out = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            comment = lines[node.lineno - 1].partition("#")[2].strip()
            doc = comment[:1].upper() + comment[1:]
            out[node.target.id] = (ast.unparse(node.annotation), doc.rstrip(".") + ".")
    return out


def sync_client() -> str:
    """The text of grok_nb/sync_client.py."""
    source = CLIENT.read_text()
    core = _class(CLIENT, "AsyncClient")
    out = [HEADER.format(source="client.py and runtime/batch.py"),
           '"""The blocking facade of the client and of its batches: each method runs its async twin on the loop '
           'thread."""\n\n',
           "from __future__ import annotations\n\n"
           "import os\n"
           "from collections.abc import Callable, Sequence\n"
           "from pathlib import Path\n"
           "from typing import Any\n\n"
           "import httpx\n\n"
           "from .api.batch import BatchState\n"
           "from .api.frames import DEFAULT_FRAMES, DEFAULT_WIDTH\n"
           "from .api.judge import DEFAULT_MODEL as DEFAULT_JUDGE_MODEL\n"
           "from .api.judge import Judgement\n"
           "from .api.models import ModelInfo, with_allowed_values\n"
           "from .api.pricing import CostEstimate\n"
           "from .api.validation import DEFAULT_MODEL\n"
           "from .backends import Backend\n"
           "from .client import DEFAULT_DEADLINE_S, DEFAULT_TIMEOUT, SyncBatchBase, SyncClientBase\n"
           "from .history.store import RunStore\n"
           "from .jobs.budget import Budget\n"
           "from .jobs.policy import PollPolicy\n"
           "from .jobs.ranking import DEFAULT_BOOTSTRAP\n"
           "from .jobs.results import JobHandle, Run\n"
           "from .runtime.engine import UpdateCallback\n"
           "from .runtime.judge import JudgedPair\n"
           "from .runtime.ratelimit import Limiter\n"
           "from .runtime.scheduler import Scheduler\n\n"
           "__all__ = [\"Client\", \"SyncBatch\"]\n\n\n"]
    out.append("class Client(SyncClientBase):\n")
    out.append('    """The blocking facade over :class:`AsyncClient`: same methods, same arguments, no ``await``.\n\n'
               "    Each method runs its AsyncClient twin on the client's loop thread; a job method starts the job\n"
               '    there and then blocks on its handle, so Ctrl+C stops the waiting and never the job.\n    """\n\n')
    for name, (annotation, doc) in _attribute_docs(core, source).items():
        out.append(f"    @property\n    def {name}(self) -> {annotation}:\n        \"\"\"{doc}\"\"\"\n"
                   f"        return self._async.{name}\n\n")
    for fn in _methods(core):
        if fn.name == "__init__":
            out.append(_def(fn, fn.args, "None", _line("        self._open(", _call_args(fn.args)) + "\n", []))
            continue
        if fn.name.startswith("_") or fn.name == "aclose":
            continue
        returns = ast.unparse(fn.returns) if fn.returns else None
        if _is_property(fn):
            out.append(f"    @property\n    def {fn.name}(self) -> {returns}:\n" + _doc(fn) +
                       f"        return self._async.{fn.name}\n\n")
        elif isinstance(fn, ast.AsyncFunctionDef) and any(a.arg == "wait" for a in fn.args.kwonlyargs):
            call = _call_args(fn.args, {"wait": "False"})
            out.append(_def(fn, fn.args, returns,
                            _line(f"        return self._job(wait, self._async.{fn.name}(", call, "))") + "\n",
                            _decorators(fn)))
        elif isinstance(fn, ast.AsyncFunctionDef):
            call = _call_args(fn.args)
            target = f"self._async.{fn.name}" + (f", {call}" if call else "")
            out.append(_def(fn, fn.args, returns, _line("        return self._call(", target) + "\n",
                            _decorators(fn)))
        elif returns == "BatchJob":
            call = _call_args(fn.args)
            out.append(_def(fn, fn.args, "SyncBatch",
                            _line("        return SyncBatch(self._run(", f"self._async.{fn.name}, {call}", "), self)")
                            + "\n", _decorators(fn)))
        else:
            call = _call_args(fn.args)
            out.append(_def(fn, fn.args, returns,
                            _line("        return self._run(", f"self._async.{fn.name}" + (f", {call}" if call else ""))
                            + "\n", _decorators(fn)))
    out[-1] = out[-1].rstrip("\n") + "\n\n\n"
    out.append(sync_batch())
    return "".join(out).rstrip("\n") + "\n"


def sync_batch() -> str:
    """The text of SyncBatch (in sync_client.py)."""
    core = _class(BATCH, "BatchJob")
    mixin = _class(REQUESTS_OUT, "BatchRequests") if REQUESTS_OUT.exists() else None
    out = ["class SyncBatch(SyncBatchBase):\n",
           '    """The blocking face of a :class:`BatchJob`: ``with client.batch(name=...) as b: ...``, then '
           '``b.wait()``."""\n\n']
    for name, (annotation, doc) in BATCH_ATTRIBUTES.items():
        out.append(f"    @property\n    def {name}(self) -> {annotation}:\n        \"\"\"{doc}\"\"\"\n"
                   f"        return self._job.{name}\n\n")
    for fn in [*(_methods(mixin) if mixin is not None else []), *_methods(core)]:
        if fn.name.startswith("_") or fn.name in BATCH_SKIP:
            continue
        returns = ast.unparse(fn.returns) if fn.returns else None
        call = _call_args(fn.args)
        if _is_property(fn):
            out.append(f"    @property\n    def {fn.name}(self) -> {returns}:\n" + _doc(fn) +
                       f"        return self._job.{fn.name}\n\n")
        elif isinstance(fn, ast.AsyncFunctionDef) and returns == "BatchJob":
            out.append(_def(fn, fn.args, "SyncBatch",
                            _line("        self._call(", f"self._job.{fn.name}" + (f", {call}" if call else ""))
                            + "        return self\n\n", _decorators(fn)))
        elif isinstance(fn, ast.AsyncFunctionDef):
            out.append(_def(fn, fn.args, returns,
                            _line("        return self._call(", f"self._job.{fn.name}" + (f", {call}" if call else ""))
                            + "\n", _decorators(fn)))
        else:
            out.append(_def(fn, fn.args, returns, _line(f"        return self._job.{fn.name}(", call) + "\n",
                            _decorators(fn)))
    return "".join(out)


def batch_requests() -> str:
    """The text of grok_nb/runtime/batch_requests.py."""
    core = _class(CLIENT, "AsyncClient")
    out = [HEADER.format(source="client.py"),
           '"""The batch builder\'s methods: the arguments and checks of the client\'s job methods, '
           'nothing sent."""\n\n',
           "from __future__ import annotations\n\n"
           "from collections.abc import Sequence\n"
           "from typing import Any\n\n"
           "from ..api.models import with_allowed_values\n"
           "from ..api.validation import DEFAULT_MODEL\n"
           "from ..jobs.results import Run\n\n\n"
           "class BatchRequests:\n"
           '    """Adds requests to a batch with the same arguments (and checks) as ``client.generate``, '
           '``edit`` and ``extend``."""\n\n'
           "    def _add(self, kind: str, arguments: dict[str, Any]) -> Run:\n"
           "        raise NotImplementedError\n\n"]
    for fn in _methods(core):
        if fn.name not in BUILDER:
            continue
        args = _signature(fn, BUILDER_DROPS)
        names = [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs] if a.arg != "self"]
        items = [f'"{n}": {n}' for n in names] + ([f"**{args.kwarg.arg}"] if args.kwarg is not None else [])
        packed = "{\n" + "".join(f"            {item},\n" for item in items) + "        }"
        doc = (ast.get_docstring(fn, clean=True) or "").strip()
        doc_fn = ast.FunctionDef(name=fn.name, args=args, decorator_list=[], returns=None, type_params=[],
                                 body=[ast.Expr(ast.Constant(_indented(
                                     f"Add a request to the batch, with the arguments and checks of "
                                     f"``client.{fn.name}``.\n\n{doc}\n")))])
        body = f'        return self._add("{fn.name}", {packed})\n\n'
        out.append(_def(doc_fn, args, "Run", body, _decorators(fn)))
    return "".join(out).rstrip("\n") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is out of date")
    options = parser.parse_args()
    stale = []
    for path, make in ((REQUESTS_OUT, batch_requests), (SYNC_OUT, sync_client)):
        text = make()
        if not path.exists() or path.read_text() != text:
            stale.append(path)
            if not options.check:
                path.write_text(text)
    if options.check and stale:
        print("out of date (run scripts/make_sync.py):", ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
