"""The onnxruntime generator: one small session per task of an IAE graph.

The graph of ``_graph.py`` answers every task at once; a session built from it
would run all its branches for any output. So the graph is split (in memory) into
one small model per task of :data:`._graph.TASKS`, each with its own
``InferenceSession``, and a call runs only the branch it needs. Sessions of a
file are cached per file and thread count.
"""

from __future__ import annotations

import threading

import numpy as np

from ._graph import TASKS
from ._network import Network

__all__ = ["OrtGenerator", "build_sessions", "cached_sessions"]

_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def _session_options(num_threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = num_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # unused initializers are not worth a warning
    return so


def build_sessions(proto, num_threads: int) -> dict:
    """One ``InferenceSession`` per task of :data:`TASKS`, cut from ``proto``.

    Parameters
    ----------
    proto : onnx.ModelProto
        A graph with the inputs and outputs of ``_graph.build``.
    num_threads : int
        intra-op threads.

    Returns
    -------
    sessions : dict of str to onnxruntime.InferenceSession
    """
    import onnxruntime as ort
    from onnx.utils import Extractor

    extractor = Extractor(proto)
    so = _session_options(num_threads)
    sessions = {}
    for task, (ins, outs) in TASKS.items():
        sub = extractor.extract_model(ins, outs)
        sub.ir_version = proto.ir_version
        del sub.opset_import[:]
        sub.opset_import.extend(proto.opset_import)
        sessions[task] = ort.InferenceSession(
            sub.SerializeToString(), sess_options=so,
            providers=["CPUExecutionProvider"],
        )
    return sessions


def cached_sessions(key, make_proto, num_threads: int) -> dict:
    """Return the sessions of ``key`` (a file's identity), built once per thread count.

    ``make_proto()`` gives the graph when they are not cached yet.
    """
    with _SESSIONS_LOCK:
        cached = _SESSIONS.get((key, num_threads))
    if cached is None:
        cached = build_sessions(make_proto(), num_threads)
        with _SESSIONS_LOCK:
            _SESSIONS[(key, num_threads)] = cached
    return cached


def clear_cache() -> None:
    """Forget the cached sessions (the next load of a file builds them again)."""
    with _SESSIONS_LOCK:
        _SESSIONS.clear()


class OrtGenerator:
    """The generator protocol of ``_generator.py`` run by onnxruntime.

    Parameters
    ----------
    network : Network
        The parameters the sessions were built from (shapes, constraint, basis).
    sessions : dict
        From :func:`build_sessions`.
    """

    name = "onnxruntime"

    def __init__(self, network: Network, sessions: dict) -> None:
        self.network = network
        self._sessions = sessions

    def _run(self, task: str, feed: np.ndarray):
        (name,), outs = TASKS[task]
        return self._sessions[task].run(outs, {name: np.ascontiguousarray(feed)})

    def encode(self, x):
        return self._run("encode", x)[0]

    def decode(self, code):
        return self._run("decode", code)[0]

    def generate(self, lam):
        return self._run("generate", lam)[0]

    def generate_with_jacobian(self, lam):
        g, jac = self._run("jacobian", lam)
        return g, jac

    def generate_free(self, lam):
        return tuple(self._run("generate_free", lam))

    def start(self, x):
        return tuple(self._run("start", x))

    def fast_project(self, x):
        return tuple(self._run("fast", x))
