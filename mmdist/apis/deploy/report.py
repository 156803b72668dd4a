"""tools/deploy.py's report: what was exported, how it agrees with
PyTorch, and its latency."""
import os.path as osp
from typing import List, Tuple

import numpy as np
import torch

from .student import Student


def versions() -> dict:
    import mmdeploy
    import onnx
    import onnxruntime
    return dict(torch=torch.__version__, mmdeploy=mmdeploy.__version__,
                onnx=onnx.__version__, onnxruntime=onnxruntime.__version__)


def make_report(student: Student, checkpoint: str, out: str,
                images: List[Tuple[str, np.ndarray]], checked: dict) -> dict:
    """The report's fields: the run's inputs, versions and the checks."""
    return dict(
        config=student.config, checkpoint=checkpoint,
        model=type(student.model).__name__, task=student.task,
        onnx=osp.join(out, 'end2end.onnx'), versions=versions(),
        images=[dict(name=name, height=image.shape[0], width=image.shape[1])
                for name, image in images],
        passed=not checked['failures'], **checked)


def summary(report: dict) -> str:
    """The report as Markdown: what was exported, the agreement, the
    latency table."""
    lines = [f"# {report['model']} ({report['task']}) to ONNX Runtime", '',
             f"- config: `{report['config']}`",
             f"- checkpoint: `{report['checkpoint']}`",
             f"- exported: `{report['onnx']}`",
             '- versions: ' + ', '.join(f'{k} {v}' for k, v in
                                        report['versions'].items()),
             f"- checked on {len(report['images'])} images: " + ', '.join(
                 f"{i['name']} ({i['height']} x {i['width']})"
                 for i in report['images']), '',
             '| agreement with PyTorch | value | tolerance |',
             '|---|---|---|']
    for key, value in report['agreement'].items():
        bound = report['tolerances'].get(key)
        shown = f'{value:.6g}' if isinstance(value, float) else str(value)
        sign = '' if bound is None else ('<= ' if key.startswith('max_')
                                         else '>= ')
        lines.append(f'| {key} | {shown} | '
                     f'{"" if bound is None else sign + f"{bound:g}"} |')
    agreement = report['agreement']
    if agreement.get('inverted_pytorch') or agreement.get('inverted_onnx'):
        lines += ['', 'Inverted boxes (x2 < x1 or y2 < y1) are counted, not '
                  "compared: ONNX's NonMaxSuppression orders a box's corners "
                  "and mmcv's nms does not, so each keeps its own set of "
                  'them.']
    lines += ['', 'Within the tolerances.' if report['passed'] else
              'NOT within the tolerances: ' + '; '.join(report['failures'])]
    if 'latency' in report:
        timing = report['latency']
        height, width = timing['input_size']
        lines += ['', f"Latency: median of {timing['repeat']} runs, one "
                  f"{height} x {width} input, {timing['threads']} threads "
                  f"({timing['cpu']}):", '',
                  '| model | runtime | ms |', '|---|---|---|']
        lines += [f"| {r['model']} | {r['runtime']} | {r['ms']:.1f} |"
                  for r in timing['rows']]
    return '\n'.join(lines)
