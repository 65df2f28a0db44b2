import {createHash} from 'node:crypto'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {Store} from '../../src/lib/store/store.js'

const digest = `sha256:${'ab'.repeat(32)}`

describe('Store.partialPath', () => {
  it('gives a blob and a file of the same digest different partial files, both under .tmp/partial', () => {
    const store = new Store('/srv/store')
    const blob = store.partialPath(digest, 'blob')
    const file = store.partialPath(digest, 'file')
    expect(blob).not.toBe(file)
    expect(blob).toBe(join('/srv/store', '.tmp', 'partial', `blob-${'ab'.repeat(32)}.part`))
    expect(file).toBe(join('/srv/store', '.tmp', 'partial', `file-${'ab'.repeat(32)}.part`))
    // Blobs are the default kind.
    expect(store.partialPath(digest)).toBe(blob)
  })

  it('names the partial file by the digest alone, so a later run finds it to resume', () => {
    expect(new Store('/srv/store').partialPath(`sha256:${'cd'.repeat(32)}`, 'file')).toBe(
      join('/srv/store', '.tmp', 'partial', `file-${'cd'.repeat(32)}.part`),
    )
  })

  it('gives two URLs declaring one sha256 partial files of their own, each named by its URL', () => {
    const store = new Store('/srv/store')
    const a = store.partialPath(digest, 'file', 'https://a.example/x.tgz')
    const b = store.partialPath(digest, 'file', 'https://b.example/x.tgz')
    expect(a).not.toBe(b)
    const urlHex = createHash('sha256').update('https://a.example/x.tgz').digest('hex').slice(0, 16)
    expect(a).toBe(join('/srv/store', '.tmp', 'partial', `file-${'ab'.repeat(32)}-${urlHex}.part`))
  })
})
