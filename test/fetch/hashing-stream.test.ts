import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {IntegrityError} from '../../src/lib/errors.js'
import {HashingStream} from '../../src/lib/fetch/hashing-stream.js'

async function drain(source: Readable, hasher: HashingStream): Promise<number> {
  let n = 0
  await pipeline(source, hasher, async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) n += c.length
  })
  return n
}

describe('HashingStream', () => {
  it('hashes what flows through it', async () => {
    const data = Buffer.from('hello airlock')
    const h = new HashingStream(data.length, 'blob x')
    expect(await drain(Readable.from([data.subarray(0, 5), data.subarray(5)]), h)).toBe(data.length)
    expect(h.digest()).toBe(sha256Digest(data))
  })

  it('stops a stream at the first byte past its size cap, naming what it was reading', async () => {
    const h = new HashingStream(4, 'blob sha256:ab of img')
    const err = await drain(Readable.from([Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')]), h).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toBe(
      'blob sha256:ab of img: digest mismatch: expected 4 bytes, got more than 4 bytes',
    )
    // The chunk that crossed the cap was not passed on.
    expect(h.bytes).toBe(5)
  })
})
