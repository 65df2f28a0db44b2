import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {FailureError} from '../../src/lib/errors.js'
import {readSmall, sizeOnDisk, writeSmall} from '../../src/lib/store/small-files.js'
import {makeTempDir} from '../helpers/tmp.js'

describe('readSmall', () => {
  it('reads a file whole, one byte past its size at most, and names a missing one with the message it is given', async () => {
    const dir = await makeTempDir('read-small-')
    await writeFile(join(dir, 'f'), 'abcdef')
    expect(readSmall(join(dir, 'f'), 6, () => 'unused').toString()).toBe('abcdef')
    // A file that grew since its size was recorded: one byte more, so its check fails.
    expect(readSmall(join(dir, 'f'), 3, () => 'unused').toString()).toBe('abcd')
    let asked = 0
    const err = (() => {
      try {
        readSmall(join(dir, 'gone'), 6, () => `gone${++asked}: missing from the store`)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(FailureError)
    expect((err as Error).message).toBe('gone1: missing from the store')
  })
})

describe('writeSmall and sizeOnDisk', () => {
  it('writes the chunks as the whole file, over what was there, and sizes regular files only', async () => {
    const dir = await makeTempDir('small-files-')
    const f = join(dir, 'f')
    await writeFile(f, 'a much longer earlier content')
    writeSmall(f, [Buffer.from('abc'), Buffer.alloc(0), Buffer.from('def')])
    expect(await readFile(f, 'utf8')).toBe('abcdef')
    expect(sizeOnDisk(f)).toBe(6)
    writeSmall(f, [])
    expect(sizeOnDisk(f)).toBe(0)
    expect(sizeOnDisk(join(dir, 'gone'))).toBeUndefined()
    expect(sizeOnDisk(dir)).toBeUndefined()
  })
})
