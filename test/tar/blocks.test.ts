import {randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import {inBlocks} from '../../src/lib/tar/writer.js'

async function* from(chunks: Buffer[]): AsyncGenerator<Buffer> {
  yield* chunks
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = []
  // Kept as yielded, not copied: a block reused before it was consumed would show.
  for await (const b of it) out.push(b)
  return out
}

describe('inBlocks', () => {
  it('hands the next stage (gzip, a file) the same bytes in full blocks: small pieces gathered, a large one passed as it is', async () => {
    // A tar of small files as the bundle writes it: header, body, padding, and now and then a large body.
    const pieces = Array.from({length: 500}, (_, i) =>
      randomBytes(i % 50 === 7 ? 300_000 : [512, 1 + (i % 900), 511][i % 3]),
    )
    const blocks = await collect(inBlocks(from(pieces), 64 * 1024))
    expect(Buffer.concat(blocks).equals(Buffer.concat(pieces))).toBe(true)
    // Far fewer writes than pieces: every block but the last is full, or a large piece on its own, or cut short by one.
    expect(blocks.length).toBeLessThan(pieces.length / 10)
    for (const [i, b] of blocks.entries()) {
      const large = b.length >= 64 * 1024
      const beforeLarge = blocks[i + 1]?.length === 300_000
      if (!large && !beforeLarge && i < blocks.length - 1)
        expect(b.length, `block ${i}`).toBeGreaterThan(64 * 1024 - 1000)
    }
  })

  it('yields nothing for nothing, and one short block for a little', async () => {
    expect(await collect(inBlocks(from([])))).toEqual([])
    expect(await collect(inBlocks(from([Buffer.from('ab'), Buffer.from('c')])))).toEqual([Buffer.from('abc')])
  })
})
