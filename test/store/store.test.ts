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

  it('is stable for one digest and kind, so a later run finds the partial file to resume', () => {
    expect(new Store('/srv/store').partialPath(digest, 'file')).toBe(new Store('/srv/store').partialPath(digest, 'file'))
    expect(new Store('/srv/store').partialPath(`sha256:${'cd'.repeat(32)}`, 'file')).not.toBe(new Store('/srv/store').partialPath(digest, 'file'))
  })
})
