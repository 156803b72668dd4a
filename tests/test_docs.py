"""The commands of the README and of docs/ name what exists: every script,
config and file they run, every flag the tool takes, every make target and
every page they link."""
import glob
import os.path as osp
import re
import shlex
from functools import lru_cache
from typing import Iterator, List

import pytest

from tests.utils import REPO, run_in_process

PAGES = [osp.join(REPO, 'README.md')] + sorted(
    glob.glob(osp.join(REPO, 'docs', '*.md')))


def shell_blocks(path: str) -> Iterator[str]:
    """The ```bash blocks of a page."""
    with open(path) as f:
        text = f.read()
    yield from re.findall(r'```bash\n(.*?)```', text, flags=re.S)


def commands(block: str) -> Iterator[List[str]]:
    """Each command of a block as words: continuation lines joined,
    comments and variable assignments dropped."""
    joined = re.sub(r'\\\n\s*', ' ', block)
    for line in joined.splitlines():
        line = line.split(' #')[0].strip()
        if not line or line.startswith('#'):
            continue
        words = shlex.split(line)
        while words and re.match(r'^[A-Z_]+=', words[0]):
            words.pop(0)  # NNODES=2 bash ...
        if words:
            yield words


def expand(word: str) -> List[str]:
    """Shell braces: configs/x_{50,101}_y.py."""
    match = re.search(r'\{([^{}]*,[^{}]*)\}', word)
    if not match:
        return [word]
    return [w for part in match.group(1).split(',')
            for w in expand(word[:match.start()] + part + word[match.end():])]


@lru_cache(maxsize=None)
def tool_help(script: str) -> str:
    result = run_in_process([script, '--help'])
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# Files a command makes before a later one reads them, or that a data set
# or a run provides: not in a fresh clone.
MADE = ('work_dirs/', 'student.pth', '/path/to/', 'data/', 'my_', '/tmp/',
        'dist_my_student.py', 'report.json')


def checked_command(words: List[str]) -> List[str]:
    """What is wrong with one command (nothing: an empty list)."""
    problems = []
    program, args = words[0], words[1:]
    if program == 'make':
        with open(osp.join(REPO, 'Makefile')) as f:
            targets = re.findall(r'^([a-z][a-z-]*):', f.read(), flags=re.M)
        # (VAR=value arguments set a make variable.)
        problems += [f'make {a}' for a in args
                     if a not in targets and not re.match(r'^[A-Z_]+=', a)]
        return problems
    if program in ('python', 'bash'):
        if args[:1] == ['-m'] or args[:1] == ['-c']:
            return problems
        script, args = args[0], args[1:]
        if not osp.isfile(osp.join(REPO, script)):
            problems.append(f'no script {script}')
            return problems
        if script.endswith('.sh'):
            # dist_train.sh CONFIG GPUS [train.py flags], slurm_*: words.
            train = 'tools/train.py' if 'train' in script else \
                'tools/test.py'
            helps = tool_help(train)
        else:
            helps = tool_help(script)
        for arg in args:
            if arg.startswith('--'):
                flag = arg.split('=')[0]
                if not re.search(rf'(^|[\s\[,]){re.escape(flag)}\b', helps):
                    problems.append(f'{script} has no {flag}')
            for path in expand(arg.split('=', 1)[-1]):  # key=file too
                if path.endswith(('.py', '.pth', '.sh')) and '::' not in \
                        path and not path.startswith(MADE) and not \
                        osp.isfile(osp.join(REPO, path)):
                    problems.append(f'no file {path}')
    return problems


@pytest.mark.parametrize('page', PAGES, ids=osp.basename)
def test_commands_name_what_exists(page):
    seen, problems = 0, []
    for block in shell_blocks(page):
        for words in commands(block):
            if words[0] in ('python', 'bash', 'make'):
                seen += 1
                problems += [f'{" ".join(words)}: {p}'
                             for p in checked_command(words)]
    assert not problems, '\n'.join(problems)
    if osp.basename(page) == 'README.md':
        assert seen >= 10


def test_the_readme_opens_with_the_two_commands():
    with open(osp.join(REPO, 'README.md')) as f:
        lines = f.read().splitlines()
    block = lines[lines.index('```bash') + 1:lines.index('```')]
    assert [line.split('#')[0].strip() for line in block] == [
        'make demo', 'make test']
    assert len(lines) <= 300


@pytest.mark.parametrize('page', PAGES, ids=osp.basename)
def test_links_and_named_files_exist(page):
    with open(page) as f:
        text = f.read()
    folder = osp.dirname(page)
    missing = [link for link in re.findall(r'\]\(([^)#:]+)\)', text)
               if not osp.exists(osp.join(folder, link))]
    # Every configs/... and tools/... path written in the page.
    for path in re.findall(r'`((?:configs|tools|benchmarks|scripts)/'
                           r'[\w./{},+-]+\.(?:py|sh))`', text):
        missing += [p for p in expand(path)
                    if not osp.isfile(osp.join(REPO, p))]
    for name in re.findall(r"mmdist::([\w/.-]+\.py)", text):
        if not osp.isfile(osp.join(REPO, 'configs', name)):
            missing.append(f'mmdist::{name}')
    assert not missing, missing
