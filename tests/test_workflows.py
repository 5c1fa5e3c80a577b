"GitHub workflows and .ci/run: .ci/run runs README's commands, the test workflow runs .ci/run, with nbdev 3 and actions pinned by tag."
import re
from pathlib import Path

import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
TAGS = ['main job', 'test']


def readme_cmd(tag):
    "README's command tagged `# tag`, read as .ci/run reads it (first matching line, tag stripped)"
    lines = [l for l in (ROOT/'README.md').read_text().splitlines() if re.search(rf'#\s*{tag}$', l)]
    return re.sub(rf'\s*#\s*{tag}$', '', lines[0]) if lines else None


def workflows():
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted((ROOT/'.github'/'workflows').glob('*.y*ml'))}


def steps(wf):
    return [s for job in wf['jobs'].values() for s in job.get('steps', [])]


def runs(wf): return [s['run'] for s in steps(wf) if 'run' in s]


@pytest.mark.parametrize('tag', TAGS)
def test_readme_has_each_command_once(tag):
    lines = [l for l in (ROOT/'README.md').read_text().splitlines() if re.search(rf'#\s*{tag}$', l)]
    assert len(lines) == 1, f"README must hold exactly one command tagged '# {tag}' (.ci/run and the test workflow run it)"
    assert 'bash .ci/run' not in lines[0]


def test_ci_run_reads_the_tagged_commands():
    ci = (ROOT/'.ci'/'run').read_text()
    for tag in TAGS: assert f'readme_cmd "{tag}"' in ci or f'readme_cmd {tag}' in ci
    assert 'readme_cmd set-up' not in ci, "README has no '# set-up' line any more: the main-job command sets up"
    for check in ('nbdev-export', 'nbdev-clean', 'nbdev-proc-nbs', 'Found cells containing imports and other code', 'tools/check_proc.py'):
        assert check in ci, f".ci/run lost its {check} check"


def test_a_workflow_runs_ci_run():
    "CI's steps are written once, in .ci/run (which reads README's commands); the test workflow calls it"
    testing = [n for n, wf in workflows().items() if 'bash .ci/run' in runs(wf)]
    assert testing, "no workflow runs `bash .ci/run`"
    ci = (ROOT/'.ci'/'run').read_text()
    assert 'git status --porcelain' in ci, ".ci/run lost its export/clean check"
    for name in testing:
        wf, text = workflows()[name], '\n'.join(runs(workflows()[name]))
        assert 'nbdev-export' not in text and readme_cmd('test') not in text, f"{name} repeats a step of .ci/run"
        setup = [s for job in wf['jobs'].values() for s in job['steps'] if s.get('uses', '').startswith('actions/setup-python@')]
        assert setup and str(setup[0]['with']['python-version']) == '3.12'
        assert all(job['runs-on'].startswith('ubuntu') for job in wf['jobs'].values())


def test_deploy_builds_with_nbdev_docs_and_official_pages_actions():
    deploy = [wf for wf in workflows().values() if any('nbdev-docs' in r for r in runs(wf))]
    assert len(deploy) == 1, "one workflow must build the site with nbdev-docs"
    uses = [s.get('uses', '').split('@')[0] for s in steps(deploy[0])]
    for action in ('quarto-dev/quarto-actions/setup', 'actions/upload-pages-artifact', 'actions/deploy-pages'):
        assert action in uses, f"the deploy workflow does not use {action}"
    up = next(s for s in steps(deploy[0]) if s.get('uses', '').startswith('actions/upload-pages-artifact'))
    assert up['with']['path'] == '_docs'


def test_actions_are_nbdev3_and_pinned():
    for name, wf in workflows().items():
        for s in steps(wf):
            if 'uses' not in s: continue
            action, _, ref = s['uses'].partition('@')
            assert 'fastai/workflows' not in action, f"{name}: {s['uses']} is an nbdev 2 action"
            assert ref and ref not in ('master', 'main'), f"{name}: {s['uses']} is not pinned to a tag"
        text = '\n'.join(runs(wf))
        assert not re.search(r'nbdev_\w+|nbdev<3', text), f"{name} calls nbdev 2 commands (nbdev_test...): nbdev 3 uses nbdev-test"
