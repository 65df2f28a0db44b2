import {readFileSync} from 'node:fs'
import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {fastParse} from '../../src/lib/manifest/fast-yaml.js'
import {parseWithYaml, type TreeNode} from '../../src/lib/manifest/tree.js'

/** What both parsers must agree on: shapes, keys, values and where each non-empty node starts. */
function project(node: TreeNode | null | undefined): unknown {
  if (!node) return null
  if (node.kind === 'map') return {map: node.off, pairs: node.pairs.map((p) => [p.key, p.keyOff, project(p.value)])}
  if (node.kind === 'seq') return {seq: node.off, items: node.items.map(project)}
  if (node.value === null) return null
  return {off: node.off, value: node.value, source: node.source, plain: node.plain}
}

function expectSame(text: string): void {
  const fast = fastParse(text)
  expect(fast, `fast parser gave up on:\n${text}`).toBeDefined()
  const slow = parseWithYaml(text)
  expect(slow.errors).toEqual([])
  expect(project(fast!.root)).toEqual(project(slow.root))
}

const manifestsDir = path.join(import.meta.dirname, '../../manifests')

describe('fastParse', () => {
  it('reads the shipped manifests exactly as the yaml package does', () => {
    expectSame(readFileSync(path.join(manifestsDir, 'kubernetes-1.29-amd64.yaml'), 'utf8'))
  })

  it('agrees with the yaml package on the block style subset', () => {
    expectSame(`---
# comment
apiVersion: airlock/v1   # trailing comment
"quoted key": 'it''s'
'single': "esc \\" \\\\ \\n \\u00e9 done"
plain: it's a value with # no comment and a:colon
url: https://example.com/a#frag
empty:
nulls: [~, null, Null]
types: [1, -2, 0x1F, 0o17, 1.5, 1e3, .inf, -.Inf, .nan, true, False, yes, no, on]
flow: {a: b, "c": [d, {e: f}], g: 'h'}
emptyflow: [[], {}]
list:
- at key indent
-   more spaces
- - nested
  - seq
-
- key: v
  other: w
- ref: x   # comment
  platforms: [linux/amd64]
deep:
    four:
        eight: 8
    back: 4
version: "1.0"
sha: 1234567890123456789012345678901234567890123456789012345678901234
sha2: 12345e7890
unicode: café ✓
`)
    expectSame('a: 1\r\nb:\r\n  - x\r\n')
    expectSame('   indented: top\n   level: map\n')
    expectSame('just a scalar\n')
    expectSame('- a\n- b\n')
    expectSame('a:\n- x\n-y: z\n')
  })

  it('gives up on what it does not handle, so the yaml package decides', () => {
    for (const text of [
      'a: &x 1\nb: *x\n',
      'a: !!str 1\n',
      'a: |\n  text\n',
      'a: >\n  text\n',
      'a: multi\n  line\n',
      'a: "multi\n  line"\n',
      'a: [1,\n  2]\n',
      'a:\tb\n',
      'a: b\x00c\n',
      'a: \x7f\n',
      'a: b\u2028c\n',
      'a: 1\n---\nb: 2\n',
      'a: 1\na: 2\n',
      'a: [1, 2,]\n',
      'a: b: c\n',
      '? a\n: b\n',
      '%YAML 1.2\n---\na: 1\n',
      'a:\n  - x\n  y: z\n',
      'a: 1\n  b: 2\n',
      '1: a\n',
      'true: a\n',
      'a: "x" y\n',
      'a: @x\n',
      'a: `x\n',
      'a: "\\q"\n',
      '- a\nb: c\n',
    ]) {
      expect(fastParse(text), JSON.stringify(text)).toBeUndefined()
    }
  })

  it('never disagrees with the yaml package on mutated manifests', () => {
    const base = readFileSync(path.join(manifestsDir, 'kubernetes-1.29-amd64.yaml'), 'utf8')
    const alphabet = [' ', '  ', '\n', ':', ': ', '- ', '#', '"', "'", '[', ']', '{', '}', ',', 'x', '\t', '&a', '*a', '|', '-', '?']
    // A small deterministic PRNG, so a failure can be replayed.
    let seed = 42
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed % n
    }
    let fastCount = 0
    for (let i = 0; i < 400; i++) {
      let text = base
      for (let k = 0; k < 1 + rand(3); k++) {
        const at = rand(text.length)
        const op = rand(3)
        if (op === 0) text = text.slice(0, at) + text.slice(at + 1 + rand(4))
        else if (op === 1) text = text.slice(0, at) + alphabet[rand(alphabet.length)] + text.slice(at)
        else text = text.slice(0, at) + alphabet[rand(alphabet.length)] + text.slice(at + 1)
      }
      const fast = fastParse(text)
      if (!fast) continue
      fastCount++
      const slow = parseWithYaml(text)
      expect(slow.errors, `fast parser accepted what yaml rejects:\n${text}`).toEqual([])
      expect(project(fast.root), text).toEqual(project(slow.root))
    }
    // Most single mutations keep the document in the subset; make sure the comparison ran.
    expect(fastCount).toBeGreaterThan(100)
  })
})
