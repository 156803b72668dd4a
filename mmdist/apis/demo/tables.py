"""A demo's results: its table, the table over seeds, the curves."""
from typing import Dict, List

from .runs import Run
from .tasks import DemoTask


def _cost(latency_ms: float, teacher_ms: float) -> str:
    """A model's latency, and its share of the teacher's (the first
    run)."""
    return f'{latency_ms:.1f} | {latency_ms / teacher_ms:.2f}x'


def write_table(task: DemoTask, results: List[dict], path: str) -> str:
    """A Markdown table of the final metrics and each model's latency (and
    that as a share of the teacher's, the first row), written to
    ``path``."""
    headers = [header for _, header in task.columns]
    lines = [
        '| model | iterations | ' + ' | '.join(headers) +
        ' | latency (ms) | of the teacher\'s | train time (s) |',
        '|---|---|' + '---|' * len(headers) + '---|---|---|'
    ]
    teacher_ms = results[0]['latency_ms']
    for r in results:
        values = ' | '.join(f'{r[key]:.2f}' for key, _ in task.columns)
        lines.append(f"| {r['name']} | {r['iters']} | {values} | "
                     f"{_cost(r['latency_ms'], teacher_ms)} | "
                     f"{r['seconds']:.0f} |")
    table = '\n'.join(lines)
    with open(path, 'w') as f:
        f.write(table + '\n')
    return table


def seeds_table(task: DemoTask, results: Dict[int, List[dict]]) -> str:
    """A Markdown table of each run's mean over seeds, and its range.

    Args:
        task: The demo that was run.
        results: The rows :func:`run_demo` returned, by seed; every seed
            has the same runs in the same order.

    Returns:
        One line per run: its metrics as ``mean (min-max)``, its mean
        latency (and that as a share of the teacher's) and train time.
    """
    seeds = sorted(results)
    names = [[r['name'] for r in results[seed]] for seed in seeds]
    if any(n != names[0] for n in names):
        raise ValueError(f'every seed must have the same runs; got {names}')
    headers = [header for _, header in task.columns]
    lines = [
        '| model | iterations | ' + ' | '.join(
            f'{h}: mean (range)' for h in headers) +
        ' | latency (ms), mean | of the teacher\'s | train time (s), mean |',
        '|---|---|' + '---|' * len(headers) + '---|---|---|'
    ]

    def mean(values: List[float]) -> float:
        return sum(values) / len(values)

    teacher_ms = mean([results[seed][0]['latency_ms'] for seed in seeds])
    for i, name in enumerate(names[0]):
        rows = [results[seed][i] for seed in seeds]
        cells = []
        for key, _ in task.columns:
            values = [r[key] for r in rows]
            cells.append(f'{mean(values):.2f} '
                         f'({min(values):.2f}-{max(values):.2f})')
        cost = _cost(mean([r['latency_ms'] for r in rows]), teacher_ms)
        seconds = mean([r['seconds'] for r in rows])
        lines.append(f"| {name} | {rows[0]['iters']} | " +
                     ' | '.join(cells) + f' | {cost} | {seconds:.0f} |')
    return '\n'.join(lines)


def plot(task: DemoTask, runs: List[Run], curves: List[dict],
         path: str) -> None:
    """Task loss and the metric against iterations, one line per run."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    for run, curve in zip(runs, curves):
        for ax, key in ((ax_loss, 'loss'), (ax_metric, 'metric')):
            if curve[key]:
                xs, ys = zip(*curve[key])
                ax.plot(xs, ys, marker='o' if key == 'metric' else None,
                        label=run.name)
    header = dict(task.columns)[task.metric]
    ax_loss.set(title=task.loss_title, xlabel='iteration', ylabel='loss')
    ax_metric.set(title=f'{header} (val)', xlabel='iteration',
                  ylabel=f'{header} (%)')
    ax_metric.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
