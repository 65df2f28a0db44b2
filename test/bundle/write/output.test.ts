import {createHash, randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {finished} from 'node:stream/promises'

import {describe, expect, it} from 'vitest'

import {BundleOutput} from '../../../src/lib/bundle/write/output.js'
import {makeTempDir} from '../../helpers/tmp.js'

describe('BundleOutput', () => {
  it('writes many small pieces gathered in one reused buffer, and large ones as they are, byte for byte, across parts', async () => {
    const dir = await makeTempDir('bundle-output-')
    // A tar as the bundle hands it on: small headers, bodies and padding, now and then a body past the 1 MiB buffer.
    const pieces = Array.from({length: 3000}, (_, i) =>
      randomBytes(i % 700 === 5 ? 1_500_000 : [512, 1 + (i % 3000), 300][i % 3]),
    )
    const out = new BundleOutput(dir, 'x.tar', 3_000_000)
    // Corked, so that the stream hands them over together (its _writev), as it does when the disk is slower than the tar.
    out.cork()
    for (const p of pieces) out.write(p)
    process.nextTick(() => out.uncork())
    out.end()
    await finished(out)
    await out.commit()
    const whole = Buffer.concat(pieces)
    const parts = await Promise.all(out.written.map(async (w) => ({w, bytes: await readFile(join(dir, w.name))})))
    expect(parts.length).toBeGreaterThan(1)
    expect(Buffer.concat(parts.map((p) => p.bytes)).equals(whole)).toBe(true)
    for (const {w, bytes} of parts) {
      expect(w.size).toBe(bytes.length)
      expect(w.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
    }
  })
})
