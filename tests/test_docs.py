"""README.md and docs/*.md: every relative link resolves, and README stays a front page.

A link resolves when its target file exists and, for a `#fragment` into a Markdown file, that
file has a heading with the fragment as its GitHub slug. http(s) and mailto links and links
inside fenced code blocks are not checked.
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]

_FENCE = re.compile(r'^\s*(```|~~~)')
# [text](target) and ![alt](target); the target ends at whitespace or ')'.
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
_HEADING = re.compile(r'^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$')


def _prose_lines(path):
  """The lines of a Markdown file outside fenced code blocks."""
  fenced = False
  for line in path.read_text(encoding='utf-8').splitlines():
    if _FENCE.match(line):
      fenced = not fenced
      continue
    if not fenced:
      yield line


def github_slug(heading):
  """GitHub's anchor for a heading: lowercase, keep letters, digits, spaces, '-' and '_'
  (after dropping inline code ticks and link syntax), spaces to hyphens."""
  text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)   # [text](url) -> text
  text = text.lower()
  text = re.sub(r'[^\w\- ]', '', text)
  return text.replace(' ', '-')


def _anchors(path):
  slugs, seen = set(), {}
  for line in _prose_lines(path):
    m = _HEADING.match(line)
    if m:
      slug = github_slug(m.group(1))
      n = seen.get(slug, 0)
      seen[slug] = n + 1
      slugs.add(slug if n == 0 else f'{slug}-{n}')   # GitHub's suffix for repeated headings
  return slugs


def _links(path):
  for line in _prose_lines(path):
    line = re.sub(r'`[^`]*`', '', line)   # inline code is not a link
    for m in _LINK.finditer(line):
      yield m.group(1)


def test_github_slug():
  assert github_slug("Using the authors' weights") == 'using-the-authors-weights'
  assert (github_slug('Training the appearance model on DeepFashion, Market-1501 and Human3.6M')
          == 'training-the-appearance-model-on-deepfashion-market-1501-and-human36m')
  assert github_slug('GPUs, TPUs and several hosts') == 'gpus-tpus-and-several-hosts'


@pytest.mark.parametrize('path', DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
  broken = []
  for target in _links(path):
    if re.match(r'[a-z][a-z0-9+.-]*:', target, re.I):   # http:, https:, mailto:, ...
      continue
    file_part, _, fragment = target.partition('#')
    dest = (path.parent / file_part).resolve() if file_part else path
    if not dest.exists():
      broken.append(f'{target}: no file {dest}')
      continue
    if fragment and dest.suffix == '.md' and fragment not in _anchors(dest):
      broken.append(f'{target}: no heading with slug #{fragment} in {dest.relative_to(ROOT)}')
  assert not broken, f'{path.relative_to(ROOT)}: broken links:\n' + '\n'.join(broken)


def test_readme_is_a_front_page():
  lines = (ROOT / 'README.md').read_text(encoding='utf-8').splitlines()
  assert len(lines) <= 320, f'README.md has {len(lines)} lines; move detail into docs/'
  assert any('(docs/architecture.md' in line for line in lines[:40]), (
      'README.md should link docs/architecture.md in its first 40 lines')


def test_readme_keeps_the_test_command():
  """CI (.ci/run) runs the README's test command."""
  text = (ROOT / 'README.md').read_text(encoding='utf-8')
  assert '## Tests' in text
  tests = text[text.index('## Tests'):]
  assert '`make test`' in tests
