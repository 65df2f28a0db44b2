import {createReadStream} from 'node:fs'
import {Readable} from 'node:stream'
import type {ReadableStream as WebReadableStream} from 'node:stream/web'
import {createGunzip} from 'node:zlib'

/** One stanza of a `Packages` index, the fields the closure and the download need (dependency fields kept as text until used). */
export interface DebPackage {
  name: string
  version: string
  architecture: string
  multiArch?: string
  essential: boolean
  priority?: string
  depends?: string
  preDepends?: string
  recommends?: string
  provides?: string
  filename: string
  size: number
  sha256: string
  /** Which repository (its position in the resolver's list) the stanza came from. */
  repo: number
}

/** The compressions apt takes an index in, in its order of preference, and the file suffix of each. */
export const INDEX_COMPRESSIONS = [
  {name: 'xz', suffix: '.xz'},
  {name: 'gz', suffix: '.gz'},
  {name: 'none', suffix: ''},
] as const
export type IndexCompression = (typeof INDEX_COMPRESSIONS)[number]['name']

/** The decompressed bytes of an index file in the store. */
export async function openIndex(file: string, compression: IndexCompression): Promise<Readable> {
  const raw = createReadStream(file, {highWaterMark: 1 << 20})
  if (compression === 'gz') return raw.pipe(createGunzip({chunkSize: 1 << 20}))
  if (compression === 'xz') {
    // Loaded on use: WebAssembly, only for repositories that offer .xz.
    // A webpack bundle seen from ESM: its exports sit under `default`.
    const mod = (await import('xz-decompress')) as unknown as {
      default?: typeof import('xz-decompress')
    } & typeof import('xz-decompress')
    const XzReadableStream = mod.default?.XzReadableStream ?? mod.XzReadableStream
    const web = Readable.toWeb(raw) as unknown as ReadableStream<Uint8Array>
    return Readable.fromWeb(new XzReadableStream(web) as unknown as WebReadableStream<Uint8Array>)
  }
  return raw
}

/**
 * The stanzas of a Packages index, read as it streams (a full Debian main
 * index is 50 MB of text and 63,000 stanzas: never whole in memory). Only
 * the fields listed in DebPackage are kept; a stanza without Package,
 * Version, Filename or SHA256 is an Error naming it.
 */
export async function* readPackages(
  stream: AsyncIterable<Uint8Array | string>,
  repo: number,
  what: string,
): AsyncGenerator<DebPackage> {
  let fields = new Map<string, string>()
  let last = ''
  let line = 0
  const finish = (): DebPackage | undefined => {
    if (fields.size === 0) return undefined
    const f = fields
    fields = new Map()
    last = ''
    const name = f.get('package')
    const version = f.get('version')
    const filename = f.get('filename')
    const sha256 = f.get('sha256')?.toLowerCase()
    if (!name || !version || !filename || !sha256 || !/^[0-9a-f]{64}$/.test(sha256)) {
      throw new Error(
        `${what}: the stanza ending at line ${line} lacks ${!name ? 'Package' : !version ? 'Version' : !filename ? 'Filename' : 'a SHA256'}${name ? ` (package ${name})` : ''}`,
      )
    }
    return {
      name,
      version,
      architecture: f.get('architecture') ?? 'all',
      multiArch: f.get('multi-arch'),
      essential: f.get('essential') === 'yes',
      priority: f.get('priority'),
      depends: f.get('depends'),
      preDepends: f.get('pre-depends'),
      recommends: f.get('recommends'),
      provides: f.get('provides'),
      filename,
      size: Number.parseInt(f.get('size') ?? '-1', 10),
      sha256,
      repo,
    }
  }
  // Hot path: every line of the index passes here. Lines are found in the
  // bytes and only the kept values decoded, each a string of its own (a slice
  // of a large decoded chunk would keep the whole chunk alive).
  const take = (buf: Buffer, s: number, e: number): DebPackage | undefined => {
    line++
    if (e > s && buf[e - 1] === 0x0d) e--
    if (e === s) return finish()
    const c = buf[s]
    if (c === 0x20 || c === 0x09) {
      // A continuation line: only dependency fields matter, and they rarely wrap.
      if (last) fields.set(last, `${fields.get(last)} ${buf.toString('utf8', s, e).trim()}`)
      return undefined
    }
    const colon = buf.indexOf(0x3a, s)
    if (colon <= s || colon >= e || colon - s > 16) {
      last = ''
      return undefined
    }
    const key = buf.toString('latin1', s, colon).toLowerCase()
    if (KEPT.has(key)) {
      fields.set(key, buf.toString('utf8', colon + 1, e).trim())
      last = key === 'depends' || key === 'pre-depends' || key === 'recommends' || key === 'provides' ? key : ''
    } else last = ''
    return undefined
  }
  let rest: Buffer = Buffer.alloc(0)
  for await (const chunk of stream) {
    const bytes =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    const buf = rest.length > 0 ? Buffer.concat([rest, bytes]) : bytes
    let start = 0
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      const p = take(buf, start, nl)
      if (p) yield p
      start = nl + 1
    }
    // A copy: the partial line must not keep the chunk it came from.
    rest = Buffer.from(buf.subarray(start))
  }
  if (rest.length > 0) {
    const p = take(rest, 0, rest.length)
    if (p) yield p
  }
  const p = finish()
  if (p) yield p
}

const KEPT = new Set([
  'package',
  'version',
  'architecture',
  'multi-arch',
  'essential',
  'priority',
  'depends',
  'pre-depends',
  'recommends',
  'provides',
  'filename',
  'size',
  'sha256',
])
