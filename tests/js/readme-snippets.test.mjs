// Every JavaScript/TypeScript snippet of README.md compiles with `tsc --strict` against the packed package, as a
// new user pastes it: once with moduleResolution node16 (module node16), once with bundler (module esnext).
// A snippet is completed with the declarations it assumes (PREAMBLES below); a new snippet without an entry, or
// an entry whose snippet is gone, fails the test, so the table cannot silently fall behind the README.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { consumerDir, npmInstall, root, tarball } from './helpers.mjs';

/** Fence languages compiled, and the ones left out (shell commands, program output). Any other fails. */
const COMPILED = new Set(['js', 'ts', 'javascript', 'typescript']);
const SKIPPED = new Set(['sh', 'bash', '']);

/**
 * What each snippet assumes, keyed by a marker: a line of that snippet (trimmed) that no other snippet has.
 * The preamble is put before the snippet; `export {}` after it makes every snippet a module.
 */
const PREAMBLES = [
  { marker: "import { createClient, ReplikitError } from 'replikit';", preamble: 'declare const token: string;' },
  {
    marker: '// In a browser: keep working with the whole cluster down, and converge exactly once when it returns.',
    preamble: "import { createClient } from 'replikit';\ndeclare const primary: string;\ndeclare const replicas: string[];",
  },
  {
    marker: "topology: 'multi-primary', protocol: 'couchdb', database: 'app',",
    preamble: "import { createClient } from 'replikit';\ndeclare const couchUser: string;\ndeclare const couchPassword: string;",
  },
];

/** The fenced blocks of a Markdown text: `{ lang, code, line }` (line: 1-based, of the opening fence). */
function fencedBlocks(text) {
  const blocks = [];
  let open = null;
  text.split('\n').forEach((l, i) => {
    const fence = /^```\s*(\S*)\s*$/.exec(l);
    if (open) {
      if (/^```\s*$/.test(l)) {
        blocks.push(open);
        open = null;
      } else open.code.push(l);
    } else if (fence) open = { lang: fence[1], code: [], line: i + 1 };
  });
  assert.equal(open, null, `README.md: the fence opened at line ${open?.line} is never closed`);
  return blocks.map((b) => ({ ...b, code: b.code.join('\n') }));
}

/** The README's snippets to compile, each with its preamble; fails on an unhandled snippet or a stale entry. */
function readmeSnippets() {
  const blocks = fencedBlocks(readFileSync(join(root, 'README.md'), 'utf8'));
  const unknown = blocks.filter((b) => !COMPILED.has(b.lang) && !SKIPPED.has(b.lang));
  assert.deepEqual(unknown.map((b) => `line ${b.line}: \`\`\`${b.lang}`), [], 'README.md: add these fence languages to COMPILED or SKIPPED');
  const snippets = blocks.filter((b) => COMPILED.has(b.lang));
  const lines = (code) => code.split('\n').map((l) => l.trim());
  for (const s of snippets) {
    const entries = PREAMBLES.filter((p) => lines(s.code).includes(p.marker));
    assert.equal(entries.length, 1, `README.md line ${s.line}: a snippet needs exactly one PREAMBLES entry, found ${entries.length}`);
    s.preamble = entries[0].preamble;
  }
  for (const p of PREAMBLES) {
    const n = snippets.filter((s) => lines(s.code).includes(p.marker)).length;
    assert.equal(n, 1, `PREAMBLES marker ${JSON.stringify(p.marker)} matches ${n} README snippets, not 1`);
  }
  return snippets;
}

let consumer;
let snippets;
before(() => {
  snippets = readmeSnippets();
  consumer = consumerDir();
  npmInstall(consumer.dir, [tarball()]);
  mkdirSync(join(consumer.dir, 'snippets'));
  snippets.forEach((s, i) => {
    s.file = `snippets/readme-${i + 1}.mts`;
    const text = `// README.md line ${s.line}\n${s.preamble}\n${s.code}\nexport {};\n`;
    writeFileSync(join(consumer.dir, s.file), text);
  });
  for (const m of ['node16', 'bundler']) {
    copyFileSync(join(root, 'tests', 'types', `tsconfig.readme-${m}.json`), join(consumer.dir, `tsconfig.readme-${m}.json`));
  }
});
after(() => consumer?.cleanup());

test('every js/ts snippet of README.md has its preamble, and every preamble its snippet', () => {
  assert.equal(snippets.length, PREAMBLES.length);
});

for (const resolution of ['node16', 'bundler']) {
  test(`tsc --strict accepts every README.md snippet (moduleResolution ${resolution})`, () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    try {
      execFileSync(process.execPath, [tsc, '-p', join(consumer.dir, `tsconfig.readme-${resolution}.json`)], {
        cwd: consumer.dir,
        encoding: 'utf8',
      });
    } catch (e) {
      // A snippet's first line is README.md line s.line + 1, and line 2 + (preamble lines) of its file.
      const where = snippets.map((s) => `  ${s.file}: its line N is README.md line N + ${s.line - 1 - s.preamble.split('\n').length}`);
      assert.fail(`tsc failed:\n${e.stdout}${e.stderr}\nsnippets:\n${where.join('\n')}`);
    }
  });
}
