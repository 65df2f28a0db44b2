import {createHash, randomBytes} from 'node:crypto'

import {describe, expect, it} from 'vitest'

import type {FilePutAction, FileRef, FileSink} from '../../src/lib/content/roles.js'

/** A FileSink under test, with a way to read what its place shows under a path (undefined: nothing there). */
export interface FileSinkPlace {
  sink: FileSink & {open?(): Promise<void>}
  /** Another sink on the same place, as a second import gets. */
  again(): FileSink & {open?(): Promise<void>}
  read(path: string): Promise<Buffer | undefined>
}

const ref = (path: string, bytes: Buffer): FileRef => ({
  path,
  size: bytes.length,
  sha256: createHash('sha256').update(bytes).digest('hex'),
})

async function* body(bytes: Buffer, chunk = 64 << 10): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk)
}

/** A body that hashes itself as it flows, as the archive reader's does: it throws before its end when the bytes are wrong. */
async function* failingBody(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes.subarray(0, bytes.length >> 1)
  throw new Error('sha256 mismatch')
}

function recorder(): {
  opts: {executable: boolean; onBytes: (n: number) => void; onStored: (a: FilePutAction) => void}
  actions: FilePutAction[]
  bytes: () => number
} {
  const actions: FilePutAction[] = []
  let bytes = 0
  return {
    opts: {executable: false, onBytes: (n) => (bytes += n), onStored: (a) => actions.push(a)},
    actions,
    bytes: () => bytes,
  }
}

/**
 * What every FileSink promises (content/roles.ts), written once and run
 * against each place that implements it, as containerd's content testsuite
 * is: a new sink passes this before anything uses it. `make` gives a fresh,
 * empty place each time.
 */
export function fileSinkContract(name: string, make: () => Promise<FileSinkPlace>): void {
  describe(`${name} keeps the FileSink promises`, () => {
    it('put, then commit: the file is there with its bytes, has() says so, onStored reports it written once', async () => {
      const {sink, read} = await make()
      await sink.open?.()
      const small = randomBytes(3000)
      const big = randomBytes(300_000)
      const r = recorder()
      await sink.put(ref('h.example/a/small.bin', small), body(small), r.opts)
      await sink.put(ref('h.example/b/big.bin', big), body(big), r.opts)
      await sink.commit()
      expect(r.actions).toEqual(['written', 'written'])
      expect(r.bytes()).toBe(small.length + big.length)
      expect(await read('h.example/a/small.bin')).toEqual(small)
      expect(await read('h.example/b/big.bin')).toEqual(big)
      expect(await sink.has(ref('h.example/b/big.bin', big))).toBe(true)
    })

    it('has() is false for a missing file and for other bytes at the same path, and only reads', async () => {
      const {sink, read} = await make()
      await sink.open?.()
      const bytes = randomBytes(1000)
      await sink.put(ref('h.example/f', bytes), body(bytes), recorder().opts)
      await sink.commit()
      expect(await sink.has(ref('h.example/missing', bytes))).toBe(false)
      const other = randomBytes(1000)
      expect(await sink.has(ref('h.example/f', other))).toBe(false)
      expect(await read('h.example/f')).toEqual(bytes)
    })

    it('a body that fails before its end leaves nothing under its name once aborted', async () => {
      const {sink, read} = await make()
      await sink.open?.()
      const good = randomBytes(2000)
      const bad = randomBytes(200_000)
      const r = recorder()
      await sink.put(ref('h.example/good', good), body(good), r.opts)
      await expect(sink.put(ref('h.example/bad', bad), failingBody(bad), r.opts)).rejects.toThrow(/sha256 mismatch/)
      await sink.abort()
      expect(await read('h.example/bad')).toBeUndefined()
      expect(await sink.has(ref('h.example/bad', bad))).toBe(false)
    })

    it('a file already there with the same bytes is reported skipped and stays as it was', async () => {
      const {sink, read, again: second} = await make()
      await sink.open?.()
      const bytes = randomBytes(5000)
      await sink.put(ref('h.example/same', bytes), body(bytes), recorder().opts)
      await sink.commit()
      const again = second()
      await again.open?.()
      const r = recorder()
      await again.put(ref('h.example/same', bytes), body(bytes), r.opts)
      await again.commit()
      expect(r.actions).toEqual(['skipped'])
      expect(await read('h.example/same')).toEqual(bytes)
    })

    it('putWhole, where the sink has it, takes checked bytes as put does', async () => {
      const {sink, read} = await make()
      if (!sink.putWhole) return
      await sink.open?.()
      const r = recorder()
      const files = Array.from({length: 50}, (_, i) => ({path: `h.example/w/f${i}`, bytes: randomBytes(100 + i)}))
      for (const f of files) await sink.putWhole(ref(f.path, f.bytes), f.bytes, r.opts)
      await sink.commit()
      expect(r.actions).toEqual(files.map(() => 'written'))
      for (const f of files) expect(await read(f.path)).toEqual(f.bytes)
    })
  })
}
