import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {creationTime, mergeStoreIndex, writeStoreIndex} from '../../src/lib/charts/store-index.js'
import {Store} from '../../src/lib/store/store.js'

const D1 = '1'.repeat(64)
const D2 = '2'.repeat(64)
const T1 = '2024-01-01T00:00:00.000Z'
const T2 = '2024-06-01T00:00:00.000Z'
const root = join(tmpdir(), `airlock-store-index-${process.pid}`)
afterAll(() => rm(root, {recursive: true, force: true}))

describe('mergeStoreIndex', () => {
  it('writes relative urls, plain hex digests and created, keeping the source metadata', () => {
    const idx = mergeStoreIndex(
      undefined,
      [
        {
          entry: {
            name: 'nginx',
            version: '15.1.0',
            urls: ['http://x/a.tgz'],
            appVersion: '1.25',
            apiVersion: 'v2',
            digest: 'zz',
          },
          digest: `sha256:${D1}`,
        },
      ],
      {
        created: T1,
        present: () => true,
      },
    )
    expect(idx).toEqual({
      apiVersion: 'v1',
      entries: {
        nginx: [
          {
            apiVersion: 'v2',
            appVersion: '1.25',
            name: 'nginx',
            version: '15.1.0',
            created: T1,
            digest: D1,
            urls: ['nginx-15.1.0.tgz'],
          },
        ],
      },
      generated: T1,
    })
  })

  it('keeps charts already listed whose file is there, drops those whose file is gone, replaces the same version', () => {
    const prev = mergeStoreIndex(
      undefined,
      [
        {entry: {name: 'a', version: '1.0.0', urls: []}, digest: `sha256:${D1}`},
        {entry: {name: 'a', version: '2.0.0', urls: []}, digest: `sha256:${D1}`},
        {entry: {name: 'gone', version: '1.0.0', urls: []}, digest: `sha256:${D1}`},
      ],
      {created: T1, present: () => true},
    )
    const next = mergeStoreIndex(
      prev,
      [
        {entry: {name: 'a', version: '2.0.0', urls: []}, digest: `sha256:${D2}`},
        {entry: {name: 'b', version: '0.1.0', urls: []}, digest: `sha256:${D2}`},
      ],
      {created: T2, present: (f) => f !== 'gone-1.0.0.tgz'},
    )
    expect(Object.keys(next.entries)).toEqual(['a', 'b'])
    // Newest version first, as Helm lists them.
    expect(next.entries.a.map((e) => [e.version, e.digest, e.created])).toEqual([
      ['2.0.0', D2, T2],
      ['1.0.0', D1, T1],
    ])
    expect(next.generated).toBe(T2)
  })

  it('keeps created for an unchanged chart so the file stays the same', () => {
    const added = [{entry: {name: 'a', version: '1.0.0', urls: []}, digest: `sha256:${D1}`}]
    const first = mergeStoreIndex(undefined, added, {created: T1, present: () => true})
    const again = mergeStoreIndex(first, added, {created: T2, present: () => true})
    expect(again).toEqual(first)
  })
})

describe('writeStoreIndex', () => {
  it('merges with the index.yaml in the store and writes a valid Helm index', async () => {
    const store = new Store(root)
    const dir = join(store.packages, 'charts')
    await mkdir(dir, {recursive: true})
    await writeFile(join(dir, 'a-1.0.0.tgz'), 'x')
    await writeStoreIndex(store, [{entry: {name: 'a', version: '1.0.0', urls: []}, digest: `sha256:${D1}`}], T1)
    await writeFile(join(dir, 'b-2.0.0.tgz'), 'y')
    await writeStoreIndex(store, [{entry: {name: 'b', version: '2.0.0', urls: []}, digest: `sha256:${D2}`}], T2)
    const doc = parse(await readFile(join(dir, 'index.yaml'), 'utf8')) as {
      apiVersion: string
      entries: Record<string, {urls: string[]; digest: string}[]>
      generated: string
    }
    expect(doc.apiVersion).toBe('v1')
    expect(Object.keys(doc.entries)).toEqual(['a', 'b'])
    expect(doc.entries.a[0]).toMatchObject({urls: ['a-1.0.0.tgz'], digest: D1, created: T1})
    expect(doc.entries.b[0]).toMatchObject({urls: ['b-2.0.0.tgz'], digest: D2, created: T2})
    expect(doc.generated).toBe(T2)
  })

  it('takes created from SOURCE_DATE_EPOCH when set', () => {
    expect(creationTime({SOURCE_DATE_EPOCH: '0'})).toBe('1970-01-01T00:00:00.000Z')
    expect(creationTime({}, new Date(T1))).toBe(T1)
  })
})
