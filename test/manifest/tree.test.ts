import {describe, expect, it} from 'vitest'

import {parseTree, type TreeNode} from '../../src/lib/manifest/tree.js'

/** Shapes, keys, values, and each node's position as line:column. */
function project(text: string): unknown {
  const t = parseTree(text)
  expect(t.errors).toEqual([])
  const at = (off: number): string => {
    const p = t.pos(off)
    return `${p.line}:${p.column}`
  }
  const walk = (n: TreeNode): unknown => {
    if (n.kind === 'map') return {map: at(n.off), pairs: n.pairs.map((p) => [p.key, at(p.keyOff), walk(p.value)])}
    if (n.kind === 'seq') return {seq: at(n.off), items: n.items.map(walk)}
    return [at(n.off), n.value, n.source, n.plain]
  }
  return t.root ? walk(t.root) : undefined
}

function error(text: string): {line: number; column: number; message: string} {
  const t = parseTree(text)
  expect(t.errors).toHaveLength(1)
  return {...t.pos(t.errors[0].off), message: t.errors[0].message}
}

describe('parseTree', () => {
  it('places block maps, sequences, keys and scalars where they are written', () => {
    expect(project("# c\na: 1   # n\nb:\n  - x\n  - \"y\"\n  -   z: 0x1F\n      w: 'it''s'\n")).toEqual({
      map: '2:1',
      pairs: [
        ['a', '2:1', ['2:4', 1, '1', true]],
        [
          'b',
          '3:1',
          {
            seq: '4:3',
            items: [
              ['4:5', 'x', 'x', true],
              ['5:5', 'y', '"y"', false],
              {
                map: '6:7',
                pairs: [
                  ['z', '6:7', ['6:10', 31, '0x1F', true]],
                  ['w', '7:7', ['7:10', "it's", "'it''s'", false]],
                ],
              },
            ],
          },
        ],
      ],
    })
  })

  it('reads flow style, block scalars, CRLF and the core schema types', () => {
    expect(project('p: [linux/amd64, {k: v}]\r\nt: |\r\n  text\r\nd: 2024-01-01\r\nb: [true, yes, ~]\r\n')).toEqual({
      map: '1:1',
      pairs: [
        [
          'p',
          '1:1',
          {
            seq: '1:4',
            items: [
              ['1:5', 'linux/amd64', 'linux/amd64', true],
              {map: '1:18', pairs: [['k', '1:19', ['1:22', 'v', 'v', true]]]},
            ],
          },
        ],
        ['t', '2:1', ['2:4', 'text\n', '|\r\n  text\r\n', false]],
        // No timestamps: a date stays the string it is, as in YAML 1.2.
        ['d', '4:1', ['4:4', '2024-01-01', '2024-01-01', true]],
        [
          'b',
          '5:1',
          {
            seq: '5:4',
            items: [
              ['5:5', true, 'true', true],
              ['5:11', 'yes', 'yes', true],
              ['5:16', null, '~', true],
            ],
          },
        ],
      ],
    })
  })

  it('puts empty values right after their indicator, and keeps a digits-only sha256 as written', () => {
    const sha = '1234567890'.repeat(6) + '1234'
    expect(project(`a:\nb: ${sha}\nc:\n  -\n  - x\n`)).toEqual({
      map: '1:1',
      pairs: [
        ['a', '1:1', ['1:3', null, '', true]],
        ['b', '2:1', ['2:4', Number(sha), sha, true]],
        [
          'c',
          '3:1',
          {
            seq: '4:3',
            items: [
              ['4:3', null, '', true],
              ['5:5', 'x', 'x', true],
            ],
          },
        ],
      ],
    })
  })

  it('resolves anchors and aliases, each alias at its own position', () => {
    expect(project('a: &p [x]\nb: *p\n')).toEqual({
      map: '1:1',
      pairs: [
        ['a', '1:1', {seq: '1:7', items: [['1:8', 'x', 'x', true]]}],
        ['b', '2:1', {seq: '2:4', items: [['1:8', 'x', 'x', true]]}],
      ],
    })
    expect(error('a: &p [x]\nb: *q\n')).toMatchObject({line: 2, column: 6, message: 'unidentified alias "q"'})
  })

  it('refuses to expand a billion laughs', () => {
    let text = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n'
    for (let i = 1; i < 8; i++) text += `a${i}: &a${i} [${Array.from({length: 10}, () => `*a${i - 1}`).join(', ')}]\n`
    expect(error(text).message).toMatch(/more than 10000 aliases/)
  })

  it('reports syntax errors at their line and column', () => {
    expect(error('a: 1\na: 2\n')).toEqual({
      line: 2,
      column: 1,
      message: 'duplicate key "a" (also on line 1): map keys must be unique',
    })
    expect(error('m:\n  k: {x: 1, x: 2}\n')).toMatchObject({
      line: 2,
      column: 13,
      message: expect.stringContaining('duplicate key "x"'),
    })
    expect(error('a: b: c\n')).toMatchObject({line: 1, column: 5})
    expect(error('a: [1, 2\nb: 3\n')).toMatchObject({line: 2})
    expect(error('a: 1\n---\nb: 2\n')).toMatchObject({
      line: 2,
      column: 1,
      message: expect.stringContaining('one YAML document'),
    })
    expect(error('a: !custom x\n').message).toMatch(/unknown tag/)
  })

  it('gives no root for a document of comments', () => {
    expect(parseTree('# nothing\n').root).toBeUndefined()
  })
})
