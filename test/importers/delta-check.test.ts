import {describe, expect, it} from 'vitest'

import type {BundleLock} from '../../src/lib/bundle-json.js'
import {refuseIncompleteTarget} from '../../src/lib/importers/delta-check.js'

describe('refuseIncompleteTarget', () => {
  it('names a base once when two inventories of it are the bases', () => {
    const lock = {
      apiVersion: 'airlock/v1',
      name: 'lab-offline',
      version: '2.1.0',
      images: [],
      files: [],
      base: [
        {name: 'lab-offline', version: '2.0.0', lockSha256: 'a'.repeat(64)},
        {name: 'lab-offline', version: '2.0.0', lockSha256: 'b'.repeat(64)},
        {name: 'tools', lockSha256: 'c'.repeat(64)},
      ],
    } as unknown as BundleLock
    expect(() => refuseIncompleteTarget('root /srv/www', lock, [{what: 'a/b', size: 1024}])).toThrow(
      'root /srv/www lacks 1 item, 1.0 KiB (1024 bytes), that this delta leaves to its base (lab-offline 2.0.0, tools); nothing was written',
    )
  })
})
