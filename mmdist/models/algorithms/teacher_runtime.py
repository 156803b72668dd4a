"""How the frozen teacher's forward runs: compiled, and on CUDA beside the
student on a stream of its own (options of :class:`FrozenTeacherDistill`).
"""
import contextlib
import time
from typing import Callable, Dict, Iterable, Iterator, Optional, Union

import torch
from mmengine.logging import print_log
from torch import Tensor

CompileOption = Union[bool, Dict[str, object]]


def compile_options(option: CompileOption,
                    dynamic: Optional[bool]) -> Optional[dict]:
    """The ``torch.compile`` keyword arguments of ``teacher_compile``: None
    (off) for False, the defaults for True, the dict as given otherwise;
    ``dynamic`` unless the dict sets it.

    Raises:
        ValueError: Neither a bool nor a dict.
    """
    if option is False or option is None:
        return None
    if option is True:
        option = {}
    if not isinstance(option, dict):
        raise ValueError(
            f'teacher_compile={option!r}: use True, False or a dict of '
            "torch.compile options, e.g. dict(mode='reduce-overhead')")
    options = dict(option)
    options.setdefault('dynamic', dynamic)
    return options


def check_compiler(options: dict) -> None:
    """Stop before training where inductor, torch.compile's default
    backend, cannot compile: on CPU it needs a C++ compiler, on CUDA
    Triton.

    Raises:
        RuntimeError: What is missing, and how to get it or turn the option
            off.
    """
    if options.get('backend', 'inductor') != 'inductor':
        return
    missing = []
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
    except Exception as exc:  # the search raises when it finds none
        missing.append(f'a C++ compiler for the CPU ({exc}; install g++, '
                       'or set CXX)')
    if torch.cuda.is_available():
        try:
            import triton  # noqa: F401
        except ImportError:
            missing.append('Triton for CUDA (pip install triton, the '
                           "release made for this torch)")
    if missing:
        raise RuntimeError(
            'model.teacher_compile: torch.compile (inductor) needs '
            + ' and '.join(missing) + '. Install it, or set '
            'model.teacher_compile=False (the teacher then runs eagerly).')


class CompiledForward:
    """A method compiled with ``torch.compile``, which logs once how long
    its first call (the compilation) took."""

    def __init__(self, method: Callable, options: dict, what: str) -> None:
        self._compiled = torch.compile(method, **options)
        self._options, self._what = options, what
        self._logged = False

    def __call__(self, *args, **kwargs):
        if self._logged:
            return self._compiled(*args, **kwargs)
        start = time.perf_counter()
        result = self._compiled(*args, **kwargs)
        self._logged = True
        print_log(
            f'{self._what} compiled with torch.compile({self._options}) '
            f'in {time.perf_counter() - start:.1f} s (its first call)',
            logger='current')
        return result


class TeacherStream:
    """On CUDA, the teacher's forward on a stream of its own, beside the
    student's.

    :meth:`run` queues the teacher after what the current stream has
    queued (the batch's copy to the GPU), and records an event;
    :meth:`join` makes the current stream wait for it before the losses
    read the teacher's outputs, and marks those outputs as used by the
    current stream, so that the caching allocator does not hand their
    memory to the teacher's next forward while the loss still reads it.
    On the CPU both do nothing.
    """

    def __init__(self) -> None:
        self._streams: Dict[torch.device, torch.cuda.Stream] = {}
        self._done: Optional[torch.cuda.Event] = None

    @contextlib.contextmanager
    def run(self, inputs: Tensor) -> Iterator[None]:
        if not inputs.is_cuda:
            yield
            return
        main = torch.cuda.current_stream(inputs.device)
        side = self._streams.get(inputs.device)
        if side is None:
            side = self._streams[inputs.device] = torch.cuda.Stream(
                inputs.device)
        side.wait_stream(main)
        inputs.record_stream(side)
        with torch.cuda.stream(side):
            yield
        self._done = side.record_event()

    def join(self, outputs: Iterable[Tensor]) -> None:
        if self._done is None:
            return
        main = torch.cuda.current_stream()
        main.wait_event(self._done)
        self._done = None
        for tensor in outputs:
            if tensor.is_cuda:
                tensor.record_stream(main)
