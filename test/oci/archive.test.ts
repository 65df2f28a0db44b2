import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, mkdtemp, open, readdir, rm, truncate, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {buffer} from 'node:stream/consumers'
import {promisify} from 'node:util'

import * as tar from 'tar'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {BundleError} from '../../src/lib/errors.js'
import {OciArchive} from '../../src/lib/oci/archive.js'
import {readTar} from '../../src/lib/tar/reader.js'

const run = promisify(execFile)

let dir: string
let layout: string
const blobs = new Map<string, Buffer>()

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'airlock-archive-'))
  layout = join(dir, 'layout')
  await mkdir(join(layout, 'blobs', 'sha256'), {recursive: true})
  // Sizes around block boundaries, an empty blob and one of several MiB.
  for (const size of [0, 1, 511, 512, 513, 4096, 3 * 1024 * 1024 + 7]) {
    const data = randomBytes(size)
    const d = sha256Digest(data)
    blobs.set(d, data)
    await writeFile(join(layout, 'blobs', 'sha256', d.slice(7)), data)
  }
  const first = [...blobs.keys()][1]
  const index = {
    schemaVersion: 2,
    manifests: [{mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: first, size: 1}],
  }
  await writeFile(join(layout, 'index.json'), JSON.stringify(index))
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
})

afterAll(async () => {
  if (dir) await rm(dir, {recursive: true, force: true})
})

async function expectAllBlobs(a: OciArchive): Promise<void> {
  expect((await a.readIndex()).manifests).toHaveLength(1)
  for (const [d, data] of blobs) {
    expect(a.hasBlob(d)).toBe(true)
    expect(a.blobSize(d)).toBe(data.length)
    const got = await buffer(a.openBlob(d))
    expect(sha256Digest(got)).toBe(d)
    if (data.length < 1 << 20) expect(await a.readBlob(d)).toEqual(data)
  }
  expect(a.hasBlob(sha256Digest('absent'))).toBe(false)
}

describe('OciArchive', () => {
  for (const format of ['gnu', 'posix', 'ustar']) {
    it(`indexes a GNU tar (${format}) with ./ names and streams every blob from its offset`, async () => {
      const file = join(dir, `gnu-${format}.tar`)
      await run('tar', ['--format', format, '-cf', file, '-C', layout, '.'])
      const a = await OciArchive.open([file])
      try {
        await expectAllBlobs(a)
      } finally {
        await a.close()
      }
    })
  }

  it('indexes a node-tar archive with plain names', async () => {
    const file = join(dir, 'node.tar')
    await tar.create({file, cwd: layout, portable: true}, ['oci-layout', 'index.json', 'blobs'])
    const a = await OciArchive.open([file])
    try {
      await expectAllBlobs(a)
      expect(a.has('oci-layout')).toBe(true)
    } finally {
      await a.close()
    }
  })

  it('reads a tar split into numbered parts, entries crossing part boundaries', async () => {
    const file = join(dir, 'split-src.tar')
    await run('tar', ['-cf', file, '-C', layout, '.'])
    const partsDir = join(dir, 'parts')
    await mkdir(partsDir)
    // An odd part size so that headers and blobs straddle the cuts.
    await run('split', ['-b', '700001', '-d', '-a', '3', file, join(partsDir, 'offline-images.tar.')])
    const parts = (await readdir(partsDir)).sort().map((n) => join(partsDir, n))
    expect(parts.length).toBeGreaterThan(3)
    const a = await OciArchive.open(parts)
    try {
      await expectAllBlobs(a)
    } finally {
      await a.close()
    }
  })

  it('follows long names (GNU and pax) and hard links', async () => {
    const src = join(dir, 'long')
    const deep = join(src, 'a'.repeat(90), 'b'.repeat(90))
    await mkdir(deep, {recursive: true})
    await writeFile(join(deep, 'file'), 'hello')
    await run('ln', [join(deep, 'file'), join(src, 'link')])
    for (const format of ['gnu', 'posix']) {
      const file = join(dir, `long-${format}.tar`)
      await run('tar', ['--format', format, '-cf', file, '-C', src, '.'])
      const a = await OciArchive.open([file])
      try {
        const name = `${'a'.repeat(90)}/${'b'.repeat(90)}/file`
        expect((await a.readEntry(name)).toString()).toBe('hello')
        expect((await buffer(a.openEntry('link'))).toString()).toBe('hello')
      } finally {
        await a.close()
      }
    }
  })

  it('refuses a file that is not a tar, and a truncated tar', async () => {
    const junk = join(dir, 'junk.tar')
    await writeFile(junk, randomBytes(2048))
    await expect(OciArchive.open([junk])).rejects.toBeInstanceOf(BundleError)

    const cut = join(dir, 'cut.tar')
    await run('tar', ['-cf', cut, '-C', layout, '.'])
    await truncate(cut, 2 * 1024 * 1024)
    await expect(OciArchive.open([cut])).rejects.toThrow(/truncated/)
  })

  it('refuses a tar without an OCI layout', async () => {
    const file = join(dir, 'plain.tar')
    await run('tar', ['-cf', file, '-C', layout, 'blobs'])
    const a = await OciArchive.open([file])
    try {
      await expect(a.readIndex()).rejects.toThrow(/not an OCI image layout/)
    } finally {
      await a.close()
    }
  })

  it('indexes a base-256 size (a sparse 8 GiB blob) and sees what the stream reader sees', async () => {
    // A fifo claiming data that looks like a header, then an 8 GiB entry whose size only base-256 can hold.
    const hdr = (path: string, type: tar.Header['type'], size: number): Buffer => {
      const b = Buffer.alloc(512)
      new tar.Header({path, type, size, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0)}).encode(b, 0)
      return b
    }
    const hidden = Buffer.concat([hdr('./hidden', 'File', 1), Buffer.alloc(512, 1)])
    const big = 8 * 1024 ** 3 + 3
    const head = Buffer.concat([hdr('./p', 'FIFO', hidden.length), hidden, hdr('./blobs/big', 'File', big)])
    const file = join(dir, 'sparse.tar')
    await writeFile(file, head)
    const tail = head.length + big + (512 - (big % 512))
    await truncate(file, tail)
    const fh = await open(file, 'r+')
    try {
      await fh.write(
        Buffer.concat([hdr('./after', 'File', 5), Buffer.from('after'), Buffer.alloc(507 + 1024)]),
        0,
        undefined,
        tail,
      )
    } finally {
      await fh.close()
    }
    const a = await OciArchive.open([file])
    try {
      expect([...a.entries.keys()]).toEqual(['blobs/big', 'after'])
      expect(a.entry('blobs/big')).toMatchObject({offset: head.length, size: big})
      expect((await a.readEntry('after')).toString()).toBe('after')
    } finally {
      await a.close()
    }
    // The stream reader decodes the same headers (only the start of the file: it would read the 8 GiB).
    const seen: string[] = []
    for await (const {header} of readTar(Readable.from([head]))) {
      seen.push(`${header.type}:${header.path}:${header.size}`)
      break
    }
    expect(seen).toEqual(['fifo:./p:1024'])
  })

  it('names a bad header checksum as a BundleError with its offset', async () => {
    const file = join(dir, 'bad-sum.tar')
    await run('tar', ['-cf', file, '-C', layout, 'oci-layout', 'index.json'])
    const fh = await open(file, 'r+')
    try {
      // The second header: oci-layout's data is one block.
      await fh.write(Buffer.from('Z'), 0, 1, 1024)
    } finally {
      await fh.close()
    }
    const err = await OciArchive.open([file]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BundleError)
    expect((err as Error).message).toBe(
      `bad archive: ${file}: header checksum mismatch at byte 1024 (not a tar archive, or a corrupt one)`,
    )
  })
})
