import {execFile} from 'node:child_process'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {promisify} from 'node:util'
import {describe, expect, it} from 'vitest'

import {parsePax, readTar} from '../../src/lib/importers/tar-reader.js'
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
    out.push({path: header.path, type: header.type, data: Buffer.concat(parts).toString(), mode: header.mode, linkpath: header.linkpath})
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
    for await (const {header} of readTar(chunked(buf, 100))) seen.push(`${header.type}:${header.path.slice(0, 6)}:${header.linkpath ?? ''}`)
    expect(seen).toEqual(['directory:a/:', 'file:a/f:', 'symlink:a/l:/etc/passwd', 'hardlink:a/h:a/f', 'char-device:a/c:', 'fifo:a/p:', 'file:a/xxxx:'])
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

  it('parses pax records by byte length', () => {
    const m = parsePax(Buffer.from('14 path=ab/ü\n11 size=42\n'))
    expect(m.get('path')).toBe('ab/ü')
    expect(m.get('size')).toBe('42')
    expect(() => parsePax(Buffer.from('99 path=x\n'))).toThrow(/length/)
  })
})
