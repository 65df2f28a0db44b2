import {describe, expect, it} from 'vitest'

import {lockText} from '../../../src/lib/bundle/format/bundle-files.js'

const text = (v: object): string => [...lockText(v)].join('')
const expected = (v: object): string => `${JSON.stringify(v, null, 2)}\n`

describe('lockText', () => {
  it('is JSON.stringify(lock, null, 2) and a newline, whatever the shape', () => {
    const shapes: object[] = [
      {},
      {a: undefined},
      {apiVersion: 'airlock/v1', images: [], files: [], blobs: []},
      {
        name: 'line\nbreak "quoted" ünïcode',
        n: 0,
        ok: true,
        nothing: null,
        gone: undefined,
        nested: {deep: {x: [1, {y: 2}], e: {}}},
      },
      {
        images: [
          {ref: 'a', platforms: ['linux/amd64', 'linux/arm64'], referrers: [{digest: 'sha256:1', tag: undefined}]},
          {ref: 'b', platforms: []},
        ],
      },
      {list: [1, 'two', null, [3, [4]], {}, []], sparse: [undefined, 5]},
    ]
    for (const s of shapes) expect(text(s)).toBe(expected(s))
  })

  it('comes in pieces for a large lock, the same text in the end', () => {
    const lock = {
      apiVersion: 'airlock/v1',
      name: 'count',
      images: Array.from({length: 3000}, (_, i) => ({
        ref: `registry.example/app-${i}:1.0`,
        digest: `sha256:${String(i).padStart(64, '0')}`,
        platforms: ['linux/amd64'],
      })),
      blobs: Array.from({length: 5000}, (_, i) => ({
        digest: `sha256:${String(i).padStart(64, 'f')}`,
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        size: i,
      })),
    }
    const pieces = [...lockText(lock)]
    expect(pieces.length).toBeGreaterThan(10)
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThan(80 << 10)
    expect(pieces.join('')).toBe(expected(lock))
  })
})
