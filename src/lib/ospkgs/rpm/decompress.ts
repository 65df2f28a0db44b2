/**
 * The compressions a repodata file comes in, by its name as repomd.xml
 * lists it: `.gz` (createrepo_c before 1.0, RHEL 8 and 9 family
 * repositories), `.zst` (createrepo_c 1.0 and later, current Fedora), `.xz`
 * (`createrepo_c --xz`) or none. zstd through fzstd (pure JavaScript, by
 * the author of fflate, streaming), xz through xz-decompress (WebAssembly,
 * as apt's indexes), so both run on Node 20 and in the standalone executable.
 */
import {Readable, Transform} from 'node:stream'
import {createGunzip} from 'node:zlib'

import {Decompress} from 'fzstd'
import xzDecompress from 'xz-decompress'

export function compressionOf(location: string): 'gz' | 'zst' | 'xz' | 'none' | undefined {
  if (location.endsWith('.gz')) return 'gz'
  if (location.endsWith('.xz')) return 'xz'
  if (location.endsWith('.zst')) return 'zst'
  if (location.endsWith('.xml')) return 'none'
  return undefined
}

function zstdStream(): Transform {
  let push: (c: Uint8Array) => void = () => {}
  const z = new Decompress((chunk) => push(chunk))
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      push = (c) => this.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength))
      try {
        z.push(chunk)
        done()
      } catch (e) {
        done(e as Error)
      }
    },
    flush(done) {
      push = (c) => this.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength))
      try {
        z.push(new Uint8Array(0), true)
        done()
      } catch (e) {
        done(e as Error)
      }
    },
  })
}

/** `source` decompressed as `location`'s name says. Throws for a compression not handled. */
export function decompressed(source: Readable, location: string): Readable {
  const kind = compressionOf(location)
  if (kind === undefined) throw new Error(`${location}: compression not supported (gz, zst, xz or none)`)
  if (kind === 'none') return source
  if (kind === 'xz') {
    // A CommonJS module: its exports through the default import, as Node's ESM loader gives them.
    const web = new xzDecompress.XzReadableStream(Readable.toWeb(source) as ReadableStream<Uint8Array>)
    return Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>)
  }
  const out = kind === 'gz' ? createGunzip() : zstdStream()
  source.on('error', (e) => out.destroy(e))
  return source.pipe(out)
}
