import {describe, expect, it} from 'vitest'

import {printBundle} from '../../src/commands/bundle.js'

describe("bundle's summary", () => {
  it('gives the rate of the bytes its size counts (what was written, the importer included), not of what was read from the store', () => {
    const lines: string[] = []
    const hex = 'a'.repeat(64)
    printBundle(
      {
        out: '/b',
        store: '/s',
        name: 'lab',
        images: 1,
        files: 1,
        written: [
          {name: 'offline-images.tar', size: 128 << 10, sha256: hex},
          {name: 'airlock-linux-amd64', size: (100 << 20) - (128 << 10), sha256: hex},
        ],
        bytesIn: 128 << 10,
        bytesOut: 100 << 20,
        ms: 2000,
      },
      (l) => lines.push(l),
    )
    expect(lines.at(-1)).toBe('total: lab: 1 image, 1 file -> /b, 100.0 MiB in 2.0 s (50.0 MiB/s)')
  })
})
