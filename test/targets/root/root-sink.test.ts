import {createHash} from 'node:crypto'
import {rmSync} from 'node:fs'
import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {FailureError} from '../../../src/lib/errors.js'
import {RootSink} from '../../../src/lib/targets/root/root-sink.js'
import {fileData} from '../../helpers/bundle-fixture.js'
import {makeTempDir} from '../../helpers/tmp.js'

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data
}

const noop = {executable: false, onBytes: () => {}, onStored: () => {}}

describe('RootSink, many small files', () => {
  it('fails the commit naming the file its write thread could not create, and aborts to an untouched root', async () => {
    const work = await makeTempDir('root-sink-thread-')
    const root = join(work, 'www')
    const sink = new RootSink(root)
    await sink.open()
    // The first few small files are written on the main thread; the rest go to the write thread,
    // which takes some milliseconds to start: the folder is gone before it creates anything.
    const files = Array.from({length: 60}, (_, i) => ({path: `h.example/d/f${i}`, data: Buffer.from(`file ${i}\n`)}))
    for (const f of files) {
      await sink.put(
        {path: f.path, size: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex')},
        once(f.data),
        noop,
      )
    }
    rmSync(join(root, 'h.example', 'd'), {recursive: true})
    const err = await sink.commit().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FailureError)
    expect((err as Error).message).toMatch(
      new RegExp(`^cannot write beside ${join(root, 'h.example/d/f')}\\d+: ENOENT`),
    )
    await sink.abort()
    await expect(readdir(root)).rejects.toThrow(/ENOENT/)
  })
})

describe('RootSink.putWhole', () => {
  const ref = (path: string, data: Buffer) => ({
    path,
    size: data.length,
    sha256: createHash('sha256').update(data).digest('hex'),
  })

  it('takes checked small files without an await once its thread runs, waits while the ring is full, and refuses the place of a folder', async () => {
    const root = join(await makeTempDir('root-sink-whole-'), 'www')
    const sink = new RootSink(root)
    await sink.open()
    const stored: string[] = []
    const opts = {executable: false, onBytes: () => {}, onStored: (a: string) => stored.push(a)}
    // Before the thread runs, and in a folder not made yet, a file goes through put().
    const early = Array.from({length: 40}, (_, i) => ({path: `h/early/f${i}`, data: Buffer.from(`early ${i}\n`)}))
    for (const f of early) await sink.putWhole(ref(f.path, f.data), f.data, opts)
    expect(stored).toHaveLength(40)
    // 24 files of 200 kB are more than the thread's 4 MiB ring: none is written back before this loop ends.
    const whole = Array.from({length: 24}, (_, i) => ({path: `h/early/w${i}`, data: fileData(200_000)}))
    const results = whole.map((f) => sink.putWhole(ref(f.path, f.data), f.data, opts))
    const atOnce = results.findIndex((r) => r !== undefined)
    expect(atOnce).toBeGreaterThanOrEqual(10)
    expect(stored).toHaveLength(40 + atOnce)
    const waiting = results.slice(atOnce)
    expect(waiting.every((r) => r instanceof Promise)).toBe(true)
    await Promise.all(waiting)
    expect(stored).toEqual(Array(64).fill('written'))
    expect(() => sink.putWhole(ref('h/early', Buffer.from('x')), Buffer.from('x'), opts)).toThrow(
      /is a folder; the bundle has a file there/,
    )
    // Nothing under a final name before commit().
    expect((await readdir(join(root, 'h', 'early'))).filter((n) => /^[fw]\d+$/.test(n))).toEqual([])
    await sink.commit()
    for (const f of [...early, ...whole]) expect((await readFile(join(root, f.path))).equals(f.data), f.path).toBe(true)

    // Again into the same root: each file there is compared with ours (which reads it, so not at once) and left alone.
    const again = new RootSink(root)
    await again.open()
    const kept: string[] = []
    for (const f of [...early, ...whole])
      await again.putWhole(ref(f.path, f.data), f.data, {...opts, onStored: (a: string) => kept.push(a)})
    expect(kept).toEqual(Array(64).fill('skipped'))
    await again.commit()
  })
})

describe('RootSink, a file where another needs a folder', () => {
  // bundle.json refuses such a pair before an import starts (read-lock.ts); the sink refuses it too, for any other caller.
  it('refuses the second put in either order, and aborts to an untouched root', async () => {
    const work = await makeTempDir('root-sink-file-folder-')
    const file = {path: 'h.example/x/a', data: Buffer.from('a file\n')}
    const under = {path: 'h.example/x/a/b', data: Buffer.from('under it\n')}
    for (const [name, order] of [
      ['file first', [file, under]],
      ['folder first', [under, file]],
    ] as const) {
      const root = join(work, name.replace(' ', '-'))
      const sink = new RootSink(root)
      await sink.open()
      const put = (f: {path: string; data: Buffer}) =>
        sink.put(
          {path: f.path, size: f.data.length, sha256: createHash('sha256').update(f.data).digest('hex')},
          once(f.data),
          noop,
        )
      await put(order[0])
      const err = await put(order[1]).catch((e: unknown) => e)
      expect(err, name).toBeInstanceOf(FailureError)
      expect((err as Error).message, name).toMatch(
        name === 'file first'
          ? /the bundle has a file there and files under it/
          : /is a folder; the bundle has a file there/,
      )
      await sink.abort()
      await expect(readdir(root), name).rejects.toThrow(/ENOENT/)
    }
  })
})
