import {execFileSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {formatSums, parseSums} from '../../src/lib/bundle/format/sums.js'
import {parseSize} from '../../src/lib/bundle/write/size.js'
import {UsageError} from '../../src/lib/errors.js'
import {comparePaths, encodeHeader, endOfArchive, normalMode, padding, treeOrder} from '../../src/lib/tar/writer.js'
import {makeTempDir} from '../helpers/tmp.js'

describe('tree order', () => {
  it('puts each folder right before its contents, children sorted by code unit', () => {
    expect(treeOrder(['b/x', 'a-b', 'a/z', 'a/b/c', 'B'])).toEqual([
      {path: 'B', type: 'file'},
      {path: 'a/', type: 'directory'},
      {path: 'a/b/', type: 'directory'},
      {path: 'a/b/c', type: 'file'},
      {path: 'a/z', type: 'file'},
      {path: 'a-b', type: 'file'},
      {path: 'b/', type: 'directory'},
      {path: 'b/x', type: 'file'},
    ])
  })

  it('does not depend on the input order', () => {
    const files = ['x/1', 'x/0', 'y', 'a/b/c/d', 'a/b/e']
    expect(treeOrder([...files].reverse())).toEqual(treeOrder(files))
    expect(comparePaths('a/b', 'a-b')).toBeLessThan(0)
  })
})

describe('headers', () => {
  it('gives 0755 to anything executable and 0644 to the rest', () => {
    expect(normalMode('file', 0o100700)).toBe(0o755)
    expect(normalMode('file', 0o100664)).toBe(0o644)
    expect(normalMode('file', 0o100600)).toBe(0o644)
    expect(normalMode('directory', 0o700)).toBe(0o755)
  })

  it('writes entries GNU tar lists with uid/gid 0, no names, fixed mtime, long names through pax', async () => {
    const dir = await makeTempDir('airlock-hdr-')
    const long = `top/${'segment-'.repeat(30)}/file.bin`
    const body = Buffer.from('hello')
    const parts = [
      encodeHeader({path: 'top/', type: 'directory', size: 0, mode: 0o755, mtime: 1_700_000_000}),
      encodeHeader({path: long, type: 'file', size: body.length, mode: 0o755, mtime: 1_700_000_000}),
      body,
      padding(body.length),
      endOfArchive(),
    ]
    const tarFile = join(dir, 'x.tar')
    writeFileSync(tarFile, Buffer.concat(parts))
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', tarFile], {
      env: {...process.env, TZ: 'UTC'},
    })
      .toString()
      .trim()
      .split('\n')
    expect(listing[0]).toMatch(/^drwxr-xr-x 0\/0 +0 2023-11-14 22:13:20 top\/$/)
    expect(listing[1]).toMatch(new RegExp(`^-rwxr-xr-x 0/0 +5 2023-11-14 22:13:20 ${long}$`))
    const verbose = execFileSync('tar', ['-tvf', tarFile]).toString()
    expect(verbose).not.toMatch(/root|nobody/)
    expect(execFileSync('tar', ['-xOf', tarFile, long]).toString()).toBe('hello')
  })
})

describe('sizes and sums', () => {
  it('reads split sizes like split -b', () => {
    expect(parseSize('4G')).toBe(4 * 1024 ** 3)
    expect(parseSize('500M')).toBe(500 * 1024 ** 2)
    expect(parseSize('700MiB')).toBe(700 * 1024 ** 2)
    expect(parseSize('1024')).toBe(1024)
    for (const bad of ['', 'G', '0', '-1M', '4X', '1.5.2M']) expect(() => parseSize(bad)).toThrow(UsageError)
  })

  it('formats SHA256SUMS as sha256sum does and reads back text and binary lines', () => {
    const h = 'a'.repeat(64)
    expect(formatSums([{sha256: h, name: 'bundle.json'}])).toBe(`${h}  bundle.json\n`)
    expect(parseSums(`${h}  a b.tar\n${'B'.repeat(64)} *c\nnonsense\n\n`)).toEqual({
      lines: [
        {sha256: h, name: 'a b.tar'},
        {sha256: 'b'.repeat(64), name: 'c'},
      ],
      bad: [3],
    })
  })
})
