"""tools/check_ops.py over the model zoos: one representative config of
every folder of mmdet's and mmseg's shipped configs (``<pkg>/.mim/configs``).

    python benchmarks/zoo_ops.py                       # both zoos, CPU
    python benchmarks/zoo_ops.py --packages mmseg --out work_dirs/zoo_ops
    python benchmarks/zoo_ops.py --keep --reverse  # a second process beside

Each config's model is built with random weights and takes one prediction
and one training step on generated inputs of 128 x 128 (tools/check_ops.py,
a few configs a process). Prints a markdown table: the family (folder), the
config, whether prediction and training ran, the mmcv ops the model called
and where each came from, and what is missing or failed for another
reason. The representative of a folder is its first config in this order:
ResNet-50 before others, then COCO/Cityscapes/ADE20K before other data,
then the shortest name. ``--also`` adds configs (the issue's named
families beyond the representatives are the default).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'check_ops.py')

#: Folders that hold no model of their own (shared bases, examples of a
#: data format, or a data set for other folders' models).
SKIP = {'_base_', 'common', 'misc', 'legacy_1.x'}
#: Configs beside the representatives: the families a user might bring
#: that call mmcv ops the representatives do not.
ALSO = (
    'mmdet::dyhead/atss_r50_fpn_dyhead_1x_coco.py',
    'mmdet::dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py',
    'mmdet::dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py',
    'mmdet::carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py',
    'mmdet::guided_anchoring/ga-retinanet_r50-caffe_fpn_1x_coco.py',
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_soft-nms_1x_coco.py',
    'mmdet::pisa/faster-rcnn_r50_fpn_pisa_1x_coco.py',
)


def zoo_dir(package: str) -> str:
    import importlib
    module = importlib.import_module(package)
    return osp.join(osp.dirname(module.__file__), '.mim', 'configs')


def representative(folder: str) -> str:
    """The folder's representative config file name."""
    names = sorted(osp.basename(p) for p in glob.glob(osp.join(folder,
                                                               '*.py')))
    data = ('coco', 'cityscapes', 'ade20k')
    return min(names, key=lambda n: ('r50' not in n,
                                     not any(d in n for d in data), len(n),
                                     n))


def zoo_configs(packages: List[str]) -> List[str]:
    configs = []
    for package in packages:
        root = zoo_dir(package)
        for folder in sorted(os.listdir(root)):
            path = osp.join(root, folder)
            if folder in SKIP or not glob.glob(osp.join(path, '*.py')):
                continue
            configs.append(f'{package}::{folder}/{representative(path)}')
    return configs


def run_chunk(configs: List[str], out: str, timeout: int,
              args: List[str]) -> List[dict]:
    """tools/check_ops.py on ``configs`` in one process; its reports
    (written to ``out`` too)."""
    if osp.exists(out):
        os.remove(out)
    try:
        subprocess.run([sys.executable, TOOL, *configs, '--out', out, *args],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        pass
    if osp.isfile(out):
        with open(out) as f:
            return json.load(f)
    if len(configs) == 1:  # it crashed or hung on its own
        return [dict(config=configs[0], error='the check did not finish '
                     f'in {timeout} s or crashed', steps=[], ops={},
                     missing=[], ok=False)]
    reports = [r for config in configs
               for r in run_chunk([config], out, timeout, args)]
    with open(out, 'w') as f:
        json.dump(reports, f)
    return reports


def row(report: dict) -> str:
    package, _, path = report['config'].partition('::')
    family, _, name = path.partition('/')
    status = {}
    for phase in ('predict', 'train'):
        failed = [s for s in report['steps']
                  if s['phase'] == phase and s['status'] != 'ok']
        status[phase] = ('—' if report.get('error') or not report['steps']
                         else 'fails' if failed else 'ok')
    ops = ', '.join(sorted(report['ops'])) or '—'
    problems = []
    if report['missing']:
        problems.append('missing ' + ', '.join(report['missing']))
    if report.get('error'):
        problems.append(report['error'])
    problems += sorted({f"{s['phase']}: {s['status']}"
                        for s in report['steps'] if s['status'] != 'ok'})
    why = '; '.join(problems).replace('|', '/') or '—'
    return (f'| {package} | {family} | `{name}` | {status["predict"]} | '
            f'{status["train"]} | {ops} | {why} |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--packages', nargs='+', default=['mmdet', 'mmseg'])
    parser.add_argument('--also', nargs='*', default=list(ALSO))
    parser.add_argument('--chunk', type=int, default=6,
                        help='configs a tools/check_ops.py process')
    parser.add_argument('--timeout', type=int, default=900,
                        help='seconds a process may take')
    parser.add_argument('--out', default='work_dirs/zoo_ops')
    parser.add_argument('--device', nargs='+', default=['cpu'])
    parser.add_argument('--size', nargs=2, default=['128', '128'],
                        metavar=('HEIGHT', 'WIDTH'),
                        help='input size (small: 2 CPU cores check ~170 '
                        'models)')
    parser.add_argument('--keep', action='store_true',
                        help='reuse the reports of chunks already in --out')
    parser.add_argument('--reverse', action='store_true',
                        help='check the chunks from the last: beside a '
                        'first process, a second with --keep and the same '
                        '--out meets it in the middle')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    configs = zoo_configs(args.packages)
    configs += [c for c in args.also if c not in configs]
    reports: Dict[str, dict] = {}
    starts = range(0, len(configs), args.chunk)
    for start in reversed(starts) if args.reverse else starts:
        chunk = configs[start:start + args.chunk]
        out = osp.join(args.out, f'chunk_{start // args.chunk:03d}.json')
        if args.keep and osp.isfile(out):
            with open(out) as f:
                done = json.load(f)
        else:
            done = run_chunk(chunk, out, args.timeout,
                             ['--device', *args.device, '--size',
                              *args.size])
        for report in done:
            reports[report['config']] = report
        print(f'{len(reports)}/{len(configs)} configs checked',
              file=sys.stderr, flush=True)
    lines = ['| package | family | config | predict | train | mmcv ops '
             'called | missing, or failing for another reason |',
             '|---|---|---|---|---|---|---|']
    lines += [row(reports[c]) for c in configs]
    ok = sum(r['ok'] for r in reports.values())
    missing = sorted({m for r in reports.values() for m in r['missing']})
    lines += ['', f'{len(configs)} configs: {ok} ran both steps; ops '
              f'missing: {", ".join(missing) or "none"}']
    table = '\n'.join(lines)
    with open(osp.join(args.out, 'table.md'), 'w') as f:
        f.write(table + '\n')
    print(table)


if __name__ == '__main__':
    main()
