import {execFile} from 'node:child_process'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {promisify} from 'node:util'

import {Header} from 'tar'
import {describe, expect, it} from 'vitest'

import {BundleError} from '../../src/lib/errors.js'
import {parsePax, type TarHeader, TarHeaderDecoder} from '../../src/lib/tar/headers.js'
import {readTar, readTarBatches, WHOLE_BODY_BYTES} from '../../src/lib/tar/reader.js'
import {tarBytes} from '../helpers/bundle-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

/** Feed a buffer in awkward chunk sizes, so block boundaries never line up with chunks. */
function chunked(buf: Buffer, size = 777): Readable {
  const parts: Buffer[] = []
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size))
  return Readable.from(parts)
}

async function list(buf: Buffer, size?: number) {
  const out: {path: string; type: string; data: string; mode: number; linkpath?: string}[] = []
  for await (const {header, body} of readTar(chunked(buf, size))) {
    const parts: Buffer[] = []
    for await (const c of body) parts.push(c)
    out.push({
      path: header.path,
      type: header.type,
      data: Buffer.concat(parts).toString(),
      mode: header.mode,
      linkpath: header.linkpath,
    })
  }
  return out
}

describe('readTar', () => {
  it('reads what GNU tar writes, long names included', async () => {
    const dir = await makeTempDir('tar-reader-')
    const long = `${'d'.repeat(120)}/${'f'.repeat(150)}`
    await mkdir(join(dir, 'top', 'd'.repeat(120)), {recursive: true})
    await writeFile(join(dir, 'top', long), 'long one')
    await writeFile(join(dir, 'top', 'a.txt'), 'x'.repeat(1000))
    for (const format of ['gnu', 'pax', 'ustar']) {
      const file = join(dir, `${format}.tar`)
      const args = ['-cf', file, `--format=${format}`, '--sort=name', '-C', dir, 'top']
      // ustar cannot hold a 150-byte file name; only the short file then.
      if (format === 'ustar') args.splice(args.length - 1, 1, 'top/a.txt')
      await run('tar', args)
      const entries = await list(await readFile(file), 1000)
      const files = entries.filter((e) => e.type === 'file')
      expect(files.find((e) => e.path === 'top/a.txt')?.data).toBe('x'.repeat(1000))
      if (format !== 'ustar') expect(files.find((e) => e.path === `top/${long}`)?.data).toBe('long one')
    }
  })

  it('reports types, link targets and pax paths, and lets the caller skip bodies', async () => {
    const buf = tarBytes([
      {name: 'a/', type: '5', mode: 0o755},
      {name: 'a/f', data: Buffer.from('hello'), mode: 0o755},
      {name: 'a/l', type: '2', linkname: '/etc/passwd'},
      {name: 'a/h', type: '1', linkname: 'a/f'},
      {name: 'a/c', type: '3'},
      {name: 'a/p', type: '6'},
      {name: 'short', data: Buffer.from('pax!'), pax: {path: `a/${'x'.repeat(300)}`}},
    ])
    const seen: string[] = []
    for await (const {header} of readTar(chunked(buf, 100)))
      seen.push(`${header.type}:${header.path.slice(0, 6)}:${header.linkpath ?? ''}`)
    expect(seen).toEqual([
      'directory:a/:',
      'file:a/f:',
      'symlink:a/l:/etc/passwd',
      'hardlink:a/h:a/f',
      'char-device:a/c:',
      'fifo:a/p:',
      'file:a/xxxx:',
    ])
    expect((await list(buf, 4096))[1]).toMatchObject({data: 'hello', mode: 0o755})
  })

  it('fails on truncation, bad checksums and a missing end marker', async () => {
    const buf = tarBytes([{name: 'f', data: Buffer.alloc(2000, 1)}])
    await expect(list(buf.subarray(0, 1200))).rejects.toThrow(/truncated/)
    await expect(list(buf.subarray(0, 2560))).rejects.toThrow(/no end marker/)
    const bad = Buffer.from(buf)
    bad[10] ^= 0xff
    await expect(list(bad)).rejects.toThrow(/checksum/)
  })

  it('hands out in one batch the entries already read, each small body whole; a big body streams, last of its batch', async () => {
    const big = Buffer.alloc(WHOLE_BODY_BYTES + 1, 7)
    const buf = tarBytes([
      {name: 'd/', type: '5', mode: 0o755},
      {name: 'd/a', data: Buffer.from('one')},
      {name: 'd/b', data: Buffer.alloc(WHOLE_BODY_BYTES, 2)},
      {name: 'd/big', data: big},
      {name: 'd/c', data: Buffer.from('three')},
    ])
    const shape = async (size: number) => {
      const out: string[][] = []
      for await (const batch of readTarBatches(chunked(buf, size))) {
        const items: string[] = []
        for (const item of batch) {
          if (item.data) items.push(`${item.header.path}=${item.data.length}`)
          else {
            let n = 0
            for await (const c of item.body) n += c.length
            items.push(`${item.header.path}~${n}`)
          }
        }
        out.push(items)
      }
      return out
    }
    // All of it read at once: one batch up to the big body, one after.
    expect(await shape(buf.length)).toEqual([
      ['d/=0', 'd/a=3', `d/b=${WHOLE_BODY_BYTES}`, `d/big~${big.length}`],
      ['d/c=5'],
    ])
    // In small chunks: a small body that ends in a later chunk is waited for, and the batch before it handed out first.
    const small = (await shape(1000)).flat()
    expect(small).toEqual(['d/=0', 'd/a=3', `d/b=${WHOLE_BODY_BYTES}`, `d/big~${big.length}`, 'd/c=5'])
  })

  it('parses pax records by byte length', () => {
    const m = parsePax(Buffer.from('14 path=ab/ü\n11 size=42\n'))
    expect(m.get('path')).toBe('ab/ü')
    expect(m.get('size')).toBe('42')
    expect(() => parsePax(Buffer.from('99 path=x\n'))).toThrow(/length/)
  })
})

/** One header block written by node-tar (ustar, base-256 for big numbers). */
function block(path: string, type: string, size: number, linkpath?: string): Buffer {
  const b = Buffer.alloc(512)
  new Header({
    path,
    type: type as Header['type'],
    size,
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: new Date(0),
    linkpath,
  }).encode(b, 0)
  return b
}

/** A pax record; its length counts its own digits. */
function paxRecord(key: string, value: string): Buffer {
  const rest = ` ${key}=${value}\n`
  let len = Buffer.byteLength(rest)
  while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest)
  return Buffer.from(`${len}${rest}`)
}

function padTo(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)])
}

/** Feed the decoder blocks and metadata bodies the way both readers do; returns the entries. */
function decode(buf: Buffer): TarHeader[] {
  const d = new TarHeaderDecoder('test.tar')
  const out: TarHeader[] = []
  for (let pos = 0; pos + 512 <= buf.length;) {
    const step = d.block(buf.subarray(pos, pos + 512), pos)
    if (step.kind === 'end') return out
    pos += 512
    if (step.kind === 'meta') {
      d.meta(buf.subarray(pos, pos + step.size))
      pos += Math.ceil(step.size / 512) * 512
      continue
    }
    out.push(step.header)
    pos += Math.ceil(step.header.size / 512) * 512
  }
  throw new Error('no end marker')
}

describe('TarHeaderDecoder', () => {
  const end = Buffer.alloc(1024)

  it('joins a ustar name prefix to the name', () => {
    const path = `${'p'.repeat(120)}/${'n'.repeat(90)}`
    const h = block(path, 'File', 0)
    // node-tar put the directory into the 155-byte prefix field.
    expect(h.subarray(345, 465).toString()).toBe('p'.repeat(120))
    expect(decode(Buffer.concat([h, end]))).toMatchObject([{path, type: 'file', size: 0}])
  })

  it('takes a GNU long name and long link from L and K records', () => {
    const name = `${'l'.repeat(300)}/file`
    const link = `${'t'.repeat(200)}/target`
    const L = Buffer.from(`${name}\0`)
    const K = Buffer.from(`${link}\0`)
    const buf = Buffer.concat([
      block('././@LongLink', 'NextFileHasLongPath', L.length),
      padTo(L),
      block('././@LongLink', 'NextFileHasLongLinkpath', K.length),
      padTo(K),
      block(name.slice(0, 99), 'SymbolicLink', 0, link.slice(0, 99)),
      block('next', 'File', 0),
      end,
    ])
    expect(decode(buf)).toMatchObject([
      {path: name, type: 'symlink', linkpath: link},
      {path: 'next', linkpath: undefined},
    ])
  })

  it('takes path and size from a pax record over the ustar fields', () => {
    const path = `${'x'.repeat(250)}/ü.bin`
    const pax = Buffer.concat([paxRecord('path', path), paxRecord('size', '99999999'), paxRecord('mtime', '0')])
    expect(parsePax(pax).get('path')).toBe(path)
    const d = new TarHeaderDecoder('test.tar')
    expect(d.block(block('PaxHeader/x', 'ExtendedHeader', pax.length), 0)).toEqual({kind: 'meta', size: pax.length})
    d.meta(pax)
    expect(d.block(block('short', 'File', 3), 1024)).toMatchObject({
      kind: 'entry',
      header: {path, size: 99999999, type: 'file'},
    })
    // The record applies to one entry only.
    expect(d.block(block('plain', 'File', 3), 99999999 + 1536)).toMatchObject({
      kind: 'entry',
      header: {path: 'plain', size: 3},
    })
  })

  it('reads a base-256 size past 8 GiB', () => {
    const size = 8 * 1024 ** 3 + 5
    const h = block('big.bin', 'File', size)
    expect(h[124]).toBe(0x80) // node-tar wrote base-256, as GNU tar does
    const d = new TarHeaderDecoder('test.tar')
    expect(d.block(h, 0)).toMatchObject({kind: 'entry', header: {path: 'big.bin', size}})
  })

  it('refuses a bad checksum, a huge metadata record and metadata with no entry', () => {
    const h = block('f', 'File', 0)
    h[0] ^= 1
    expect(() => new TarHeaderDecoder('test.tar').block(h, 1024)).toThrow(BundleError)
    expect(() => new TarHeaderDecoder('test.tar').block(h, 1024)).toThrow(
      /test\.tar: header checksum mismatch at byte 1024/,
    )
    expect(() => new TarHeaderDecoder('t').block(block('x', 'ExtendedHeader', 2 << 20), 0)).toThrow(
      /metadata record of/,
    )
    const L = Buffer.from('name\0')
    expect(() =>
      decode(Buffer.concat([block('././@LongLink', 'NextFileHasLongPath', L.length), padTo(L), end])),
    ).toThrow(/ends after a metadata record/)
  })

  it('gives data to every type but hard links and folders, as GNU tar reads them', () => {
    // The "data" of the first entry looks like a header: GNU tar skips it unless the type has no data.
    const hidden = Buffer.concat([block('hidden', 'File', 5), padTo(Buffer.from('HIDDN'))])
    const cases = [
      ['FIFO', 'x', true],
      ['SymbolicLink', 'x', true],
      ['CharacterDevice', 'x', true],
      ['Link', 'x', false],
      ['Directory', 'd/', false],
    ] as const
    for (const [type, name, hasData] of cases) {
      const got = decode(Buffer.concat([block(name, type, hidden.length, 'y'), hidden, block('after', 'File', 0), end]))
      expect(got.map((e) => e.path)).toEqual(hasData ? [name, 'after'] : [name, 'hidden', 'after'])
      expect(got[0].size).toBe(hasData ? hidden.length : 0)
    }
  })
})
