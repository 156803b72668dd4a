"""The distributions that scripts/gpu_wheels.sh fetches: everything that
``mmdist[EXTRAS]`` needs in this environment, at the versions installed
here, less what a CUDA image already has (``--have``: torch, torchvision,
numpy, ... with all that they need in turn), plus setuptools (an image's
may be 82 or later, which has no ``pkg_resources`` for mmengine).

    python scripts/gpu_wheel_list.py [--extras tests,yolo,lite] [--have ...]

Prints ``name==version``, one a line. Read from the installed metadata
(``make install`` first), so the list follows setup and pins as they are.
"""
import argparse
import importlib.metadata as metadata
import re
import sys
from typing import Iterable, Set

from packaging.requirements import Requirement

# What scripts/gpu_check.sh expects a CUDA image to bring.
IMAGE = ['torch', 'torchvision', 'numpy', 'scipy', 'matplotlib',
         'opencv-python', 'opencv-python-headless', 'pytest', 'pillow']


def canonical(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def requirements(name: str, extras: Iterable[str] = ()) -> Set[str]:
    """The names that the installed ``name`` requires with ``extras``
    (markers evaluated for this Python and platform)."""
    found = set()
    for line in metadata.requires(name) or []:
        req = Requirement(line)
        wanted = [{'extra': e} for e in extras] or [{'extra': ''}]
        if req.marker and not any(req.marker.evaluate(env) for env in wanted):
            continue
        found.add(canonical(req.name))
    return found


def closure(roots: Iterable[str], extras: Iterable[str] = ()) -> Set[str]:
    """``roots`` and everything they need, among the installed
    distributions (a requirement not installed here is left out: its
    marker excluded it from this platform)."""
    installed = {canonical(d.metadata['Name'])
                 for d in metadata.distributions()}
    todo, seen = list(roots), set()
    first = set(todo)
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        todo.extend(requirements(name, extras if name in first else ()))
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--extras', default='tests,yolo,lite')
    parser.add_argument('--have', nargs='*', default=IMAGE)
    args = parser.parse_args()
    extras = [e for e in args.extras.split(',') if e]
    have = closure([canonical(n) for n in args.have])
    wanted = (closure(['mmdist'], extras) - have) | {'setuptools'}
    for name in sorted(wanted - {'mmdist'}):
        print(f'{name}=={metadata.version(name)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
