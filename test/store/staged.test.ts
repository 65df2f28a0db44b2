import {existsSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {StagedFiles} from '../../src/lib/store/staged.js'
import {makeTempDir} from '../helpers/tmp.js'

describe('StagedFiles', () => {
  it('keeps staged files under their temporary names until commit, then renames every one (folders made), and only those staged before it', async () => {
    const root = await makeTempDir('airlock-staged-')
    await mkdir(join(root, 'tmp'))
    const staged = new StagedFiles(root)
    const a = {tmp: join(root, 'tmp', 'a.part'), dest: join(root, 'final', 'sub', 'a')}
    const b = {tmp: join(root, 'tmp', 'b.part'), dest: join(root, 'final', 'b')}
    await writeFile(a.tmp, 'aaa')
    await writeFile(b.tmp, 'bbb')
    staged.stage(a.tmp, a.dest)
    staged.stage(b.tmp, b.dest)
    expect(staged.has(a.dest)).toBe(true)
    expect(staged.pathOf(a.dest)).toBe(a.tmp)
    expect(existsSync(a.dest)).toBe(false)

    const committing = staged.commit()
    // Staged while a commit runs: waits for the next one.
    const c = {tmp: join(root, 'tmp', 'c.part'), dest: join(root, 'final', 'c')}
    await writeFile(c.tmp, 'ccc')
    staged.stage(c.tmp, c.dest)
    await committing
    expect(await readFile(a.dest, 'utf8')).toBe('aaa')
    expect(await readFile(b.dest, 'utf8')).toBe('bbb')
    expect(existsSync(a.tmp)).toBe(false)
    expect(staged.has(a.dest)).toBe(false)
    expect(staged.pathOf(a.dest)).toBe(a.dest)
    expect(existsSync(c.dest)).toBe(false)
    expect(staged.has(c.dest)).toBe(true)

    await staged.commit()
    expect(await readFile(c.dest, 'utf8')).toBe('ccc')
    expect(staged.has(c.dest)).toBe(false)
  })
})
