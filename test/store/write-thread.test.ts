import {createHash} from 'node:crypto'
import {readdirSync} from 'node:fs'
import {readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setImmediate as nextTurn, setTimeout as sleep} from 'node:timers/promises'

import {describe, expect, it} from 'vitest'

import {WriteThread, WriteThreadError} from '../../src/lib/store/write-thread.js'
import {makeTempDir} from '../helpers/tmp.js'

function bytes(i: number, size: number): Buffer {
  const out = Buffer.alloc(size)
  for (let off = 0, k = 0; off < size; k++) off += createHash('sha256').update(`${i}/${k}`).digest().copy(out, off)
  return out
}

describe('WriteThread', () => {
  it('writes every file whole through a ring far smaller than all of them (waiting while it is full, wrapping at its end)', async () => {
    const dir = await makeTempDir('write-thread-')
    const ring = 10_000
    const thread = new WriteThread(ring)
    const files = Array.from({length: 300}, (_, i) => ({
      path: join(dir, `f${i}`),
      data: bytes(i, (i * 997) % 4001),
      mode: i % 3 === 0 ? 0o755 : 0o644,
    }))
    // The bytes of one file in several chunks, as a body gives them; the largest file fills 40% of the ring.
    // A turn of the event loop now and then sends what is queued, so the thread frees space while more comes.
    for (const [i, f] of files.entries()) {
      const cut = Math.floor(f.data.length / 3)
      await thread.write(f.path, [f.data.subarray(0, cut), f.data.subarray(cut)], f.data.length, f.mode, true)
      if (i % 2 === 0) await nextTurn()
    }
    await thread.drain()
    await thread.stop()
    expect(files.reduce((n, f) => n + f.data.length, 0)).toBeGreaterThan(50 * ring)
    for (const f of files) {
      expect((await readFile(f.path)).equals(f.data), f.path).toBe(true)
      expect((await stat(f.path)).mode & 0o777, f.path).toBe(f.mode)
    }
    expect(files.some((f) => f.data.length === 0)).toBe(true)
  })

  it('refuses a file of more than half its ring, which might never fit after the last one written', async () => {
    const dir = await makeTempDir('write-thread-big-')
    const thread = new WriteThread(10_000)
    await expect(thread.write(join(dir, 'big'), [Buffer.alloc(5001)], 5001, 0o644, false)).rejects.toThrow(RangeError)
    await thread.write(join(dir, 'half'), [Buffer.alloc(5000, 1)], 5000, 0o644, false)
    await thread.drain()
    await thread.stop()
    expect((await readFile(join(dir, 'half'))).length).toBe(5000)
    expect(await readdir(dir)).toEqual(['half'])
  })

  it('never replaces a file: the first failure names the file, stops the thread, and every later write and the drain throw it', async () => {
    const dir = await makeTempDir('write-thread-fail-')
    await writeFile(join(dir, 'taken'), 'mine\n')
    const thread = new WriteThread(64 * 1024)
    await thread.write(join(dir, 'a'), [Buffer.from('a\n')], 2, 0o644, false)
    await thread.write(join(dir, 'taken'), [Buffer.from('theirs\n')], 7, 0o644, false)
    await thread.write(join(dir, 'b'), [Buffer.from('b\n')], 2, 0o644, false)
    // 'b2' in a batch of its own, sent before the thread has even started.
    await nextTurn()
    await thread.write(join(dir, 'b2'), [Buffer.from('b\n')], 2, 0o644, false)
    await nextTurn()
    const err = await thread.drain().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WriteThreadError)
    expect(err).toMatchObject({path: join(dir, 'taken'), code: 'EEXIST'})
    await expect(thread.write(join(dir, 'c'), [Buffer.from('c\n')], 2, 0o644, false)).rejects.toBe(err)
    await thread.stop()
    expect(await readFile(join(dir, 'taken'), 'utf8')).toBe('mine\n')
    // What was queued after the failure is never written.
    expect((await readdir(dir)).sort()).toEqual(['a', 'taken'])
  })

  it('creates nothing once stop() resolved, though it was busy writing what was queued', async () => {
    const dir = await makeTempDir('write-thread-stop-')
    const thread = new WriteThread(16 * 1024 * 1024)
    const data = bytes(1, 2000)
    for (let i = 0; i < 5000; i++) await thread.write(join(dir, `f${i}`), [data], data.length, 0o644, false)
    await nextTurn()
    while (readdirSync(dir).length < 50) await sleep(1)
    await thread.stop()
    const after = readdirSync(dir).length
    expect(after).toBeLessThan(5000)
    await sleep(200)
    expect(readdirSync(dir).length).toBe(after)
  })
})
