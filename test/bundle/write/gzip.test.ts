import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {pipeline} from 'node:stream/promises'
import {promisify} from 'node:util'
import {gunzipSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {GZIP_MEMBER_BYTES, reproducibleGzip} from '../../../src/lib/bundle/write/gzip.js'
import {makeTempDir} from '../../helpers/tmp.js'

const run = promisify(execFile)

/** Fixed bytes that gzip shrinks about 2:1 (a 16-letter alphabet). */
function bytes(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size)
  for (let off = 0, i = 0; off < size; i++) off += createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off)
  const alphabet = Buffer.from('etaoinshrdlucmfw')
  for (let i = 0; i < out.length; i++) out[i] = alphabet[out[i] & 15]
  return out
}

/** `data` handed to reproducibleGzip in chunks of `chunk` bytes; the compressed stream. */
async function compress(data: Buffer, chunk: number): Promise<Buffer> {
  const pieces: Buffer[] = []
  for (let at = 0; at < data.length; at += chunk) pieces.push(Buffer.from(data.subarray(at, at + chunk)))
  const gz = reproducibleGzip()
  const out = buffer(gz)
  await pipeline(Readable.from(pieces), gz)
  return out
}

/** How many member headers the stream holds: 1f 8b 08, time 0, OS byte 3 (a chance match inside compressed data is unlikely at these sizes). */
function memberCount(gz: Buffer): number {
  let n = 0
  for (
    let i = gz.indexOf(Buffer.from([0x1f, 0x8b, 0x08]));
    i >= 0;
    i = gz.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), i + 1)
  ) {
    if (gz[i + 9] === 3 && gz.readUInt32LE(i + 4) === 0) n++
  }
  return n
}

describe('reproducibleGzip', () => {
  const data = bytes(3 * GZIP_MEMBER_BYTES + 12_345, 'gzip members')

  it('writes one gzip stream of several members that gunzip reads back whole', async () => {
    const gz = await compress(data, 64 * 1024)
    expect(memberCount(gz)).toBeGreaterThanOrEqual(4)
    expect(gz.length).toBeLessThan(data.length * 0.7)
    const dir = await makeTempDir('airlock-gzip-')
    await writeFile(join(dir, 'x.gz'), gz)
    // The system's gzip, as a seed node's `tar -xzf` would use it.
    const {stdout} = await run('gzip', ['-dc', join(dir, 'x.gz')], {encoding: 'buffer', maxBuffer: 64 * 1024 * 1024})
    expect(sha(stdout)).toBe(sha(data))
    // And Node's gunzip, as import and verify read it.
    expect(sha(gunzipSync(gz))).toBe(sha(data))
  })

  it('gives the same bytes for the same input, whatever its chunks', async () => {
    const [a, b, c] = await Promise.all([compress(data, 64 * 1024), compress(data, 7_777), compress(data, data.length)])
    expect(sha(b)).toBe(sha(a))
    expect(sha(c)).toBe(sha(a))
  })

  it('compresses a tar that tar -xzf unpacks', async () => {
    const dir = await makeTempDir('airlock-gzip-tar-')
    await mkdir(join(dir, 'in'))
    await writeFile(join(dir, 'in', 'a.bin'), data)
    await writeFile(join(dir, 'in', 'b.txt'), 'hello\n')
    const {stdout: tar} = await run('tar', ['-cf', '-', '-C', join(dir, 'in'), '.'], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    })
    await writeFile(join(dir, 'x.tar.gz'), await compress(tar, 100_000))
    await mkdir(join(dir, 'out'))
    await run('tar', ['-xzf', join(dir, 'x.tar.gz'), '-C', join(dir, 'out')])
    expect(sha(await readFile(join(dir, 'out', 'a.bin')))).toBe(sha(data))
    expect(await readFile(join(dir, 'out', 'b.txt'), 'utf8')).toBe('hello\n')
  })

  it('writes a valid gzip stream for empty input and for input of exactly one member', async () => {
    expect(gunzipSync(await compress(Buffer.alloc(0), 1)).length).toBe(0)
    const one = data.subarray(0, GZIP_MEMBER_BYTES)
    const gz = await compress(one, 50_000)
    expect(memberCount(gz)).toBe(1)
    expect(sha(gunzipSync(gz))).toBe(sha(one))
  })
})

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}
