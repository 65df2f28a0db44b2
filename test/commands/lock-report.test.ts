import {describe, expect, it} from 'vitest'

import {lockReport} from '../../src/commands/lock.js'

const D = (c: string) => `sha256:${c.repeat(64)}`

describe("lock's result", () => {
  it('counts images pinned now and already, and selections expanded; one line per image and a total', () => {
    const {result, lines} = lockReport({
      file: 'm.yaml',
      out: 'm.lock.yaml',
      changed: true,
      images: [
        {ref: `r/a:1@${D('a')}`, digest: D('a'), action: 'pinned'},
        {ref: `r/b:2@${D('b')}`, digest: D('b'), action: 'unchanged'},
        {ref: `r/c:3@${D('c')}`, digest: D('c'), action: 'pinned', from: 'spec.images[2]'},
      ],
      // The report has a row per repository a repositories entry took, as well as one per images selection.
      selections: [
        {field: 'spec.images[2]', repository: 'r/c', selection: 'all', selected: [], left: []},
        {field: 'spec.repositories[0]', repository: 'r/d', selection: 'all', selected: [], left: []},
        {field: 'spec.repositories[0]', repository: 'r/e', selection: 'all', selected: [], left: []},
      ],
      files: [],
      repositories: [{field: 'spec.repositories[0]', registry: 'r', repositories: ['d', 'e'], leftOut: 0}],
    })
    expect(result.counts).toEqual({images: 3, pinned: 2, unchanged: 1, selections: 1, repositories: 1, files: 0})
    expect(result.items).toHaveLength(3)
    expect(lines).toContain(`r/c:3  ${D('c')}  pinned     spec.images[2]`)
    expect(lines.at(-1)).toBe('total: 3 images in m.lock.yaml: 2 pinned now, 1 pinned already; 2 selections expanded')
  })
})
