/**
 * Bundles made by the tests themselves, independent of src/: well-formed
 * ones with GNU tar, and hostile ones from tar headers written byte by byte
 * (links, devices, `..`, absolute paths, long pax names, lies about sizes).
 */
import {execFile} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {chmod, mkdir, rm, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {promisify} from 'node:util'
import {gzipSync} from 'node:zlib'

const run = promisify(execFile)

export interface FixtureFile {
  /** Mirrored path, e.g. `127.0.0.1:8081/release/v1/bin/kubeadm`. */
  path: string
  data: Buffer
  kind?: 'binary' | 'package' | 'chart'
  executable?: boolean
}

export interface LockFileJson {
  kind: 'binary' | 'package' | 'chart'
  url: string
  path: string
  size: number
  sha256: string
}

export interface LockJson {
  apiVersion: 'airlock/v1'
  name: string
  version?: string
  images: unknown[]
  files: LockFileJson[]
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Random bytes with some repetition, so gzip has work to do like on real binaries. */
export function fileData(size: number, seed = randomBytes(4).readUInt32LE()): Buffer {
  const out = Buffer.alloc(size)
  const chunk = randomBytes(4096)
  for (let off = 0, i = seed; off < size; off += 4096, i++) {
    // Half random, half a repeated pattern: compresses to roughly 55%.
    if (i % 2 === 0) randomBytes(Math.min(4096, size - off)).copy(out, off)
    else chunk.copy(out, off, 0, Math.min(4096, size - off))
  }
  return out
}

export function lockEntry(f: FixtureFile): LockFileJson {
  return {
    kind: f.kind ?? 'binary',
    url: `http://${f.path}`,
    path: f.path,
    size: f.data.length,
    sha256: sha256Hex(f.data),
  }
}

// ---- raw tar writing -------------------------------------------------------

export interface RawEntry {
  name: string
  /** typeflag: '0' file, '1' hard link, '2' symlink, '3' char dev, '4' block dev, '5' dir, '6' fifo */
  type?: string
  data?: Buffer
  mode?: number
  linkname?: string
  /** Header size when it should lie about the data that follows. */
  size?: number
  /** Pax records for this entry (e.g. a long `path`). */
  pax?: Record<string, string>
}

/** One ustar header block; `size` may lie about the data that follows. */
export function tarHeader(name: string, type: string, size: number, mode = 0o644, linkname = ''): Buffer {
  const b = Buffer.alloc(512)
  b.write(name.slice(0, 100), 0, 'utf8')
  b.write(`${mode.toString(8).padStart(7, '0')}\0`, 100, 'ascii')
  b.write('0000000\0', 108, 'ascii')
  b.write('0000000\0', 116, 'ascii')
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii')
  b.write('00000000000\0', 136, 'ascii')
  b.write('        ', 148, 'ascii')
  b.write(type, 156, 'ascii')
  b.write(linkname.slice(0, 100), 157, 'utf8')
  b.write('ustar\0', 257, 'ascii')
  b.write('00', 263, 'ascii')
  let sum = 0
  for (const x of b) sum += x
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii')
  return b
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512)
}

function paxBody(records: Record<string, string>): Buffer {
  const parts: Buffer[] = []
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`
    let len = Buffer.byteLength(rest) + 1
    while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest)
    parts.push(Buffer.from(`${len}${rest}`))
  }
  return Buffer.concat(parts)
}

/** A plain tar of raw entries, with the end marker. */
export function tarBytes(entries: RawEntry[]): Buffer {
  const out: Buffer[] = []
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0)
    if (e.pax) {
      const body = paxBody(e.pax)
      out.push(tarHeader('PaxHeader', 'x', body.length, 0o644), body, pad(body.length))
    }
    out.push(
      tarHeader(e.name, e.type ?? '0', e.size ?? data.length, e.mode ?? 0o644, e.linkname),
      data,
      pad(data.length),
    )
  }
  out.push(Buffer.alloc(1024))
  return Buffer.concat(out)
}

// ---- bundles ---------------------------------------------------------------

async function writeSums(dir: string, names: string[]): Promise<void> {
  const {readFile} = await import('node:fs/promises')
  const lines: string[] = []
  for (const n of names) lines.push(`${sha256Hex(await readFile(join(dir, n)))}  ${n}`)
  await writeFile(join(dir, 'SHA256SUMS'), `${lines.join('\n')}\n`)
}

async function emptyImages(dir: string): Promise<void> {
  const layout = join(dir, '.images-staging')
  await mkdir(layout, {recursive: true})
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: []}),
  )
  await mkdir(join(layout, 'blobs', 'sha256'), {recursive: true})
  await run('tar', [
    '-cf',
    join(dir, 'offline-images.tar'),
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '-C',
    layout,
    'oci-layout',
    'index.json',
    'blobs',
  ])
  await rm(layout, {recursive: true, force: true})
}

async function gnuTarGz(dir: string, archive: string, top: string, files: FixtureFile[]): Promise<void> {
  const staging = join(dir, `.staging-${top}`)
  await mkdir(join(staging, top), {recursive: true})
  for (const f of files) {
    const p = join(staging, top, f.path)
    await mkdir(dirname(p), {recursive: true})
    await writeFile(p, f.data)
    await chmod(p, f.executable ? 0o755 : 0o644)
  }
  await run('tar', [
    '-czf',
    join(dir, archive),
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '-C',
    staging,
    top,
  ])
  await rm(staging, {recursive: true, force: true})
}

export interface FixtureBundle {
  dir: string
  lock: LockJson
  files: FixtureFile[]
}

/** A well-formed bundle made with GNU tar: binaries in offline-files, packages in component-tools. */
export async function makeBundle(dir: string, files: FixtureFile[], name = 'fixture'): Promise<FixtureBundle> {
  await mkdir(dir, {recursive: true})
  const binaries = files.filter((f) => (f.kind ?? 'binary') === 'binary')
  const packages = files.filter((f) => (f.kind ?? 'binary') !== 'binary')
  await gnuTarGz(dir, 'offline-files.tar.gz', 'offline-files', binaries)
  await gnuTarGz(dir, 'component-tools.tar.gz', 'component-tools', packages)
  await emptyImages(dir)
  const lock: LockJson = {apiVersion: 'airlock/v1', name, version: '1.0.0', images: [], files: files.map(lockEntry)}
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(lock, null, 2)}\n`)
  await writeSums(dir, ['offline-files.tar.gz', 'component-tools.tar.gz', 'offline-images.tar', 'bundle.json'])
  return {dir, lock, files}
}

/**
 * A bundle whose offline-files.tar.gz is `filesTarGz` (raw bytes, hostile or
 * broken) while bundle.json lists `listed`; SHA256SUMS matches what is on
 * disk, so only a look inside the archive can refuse it.
 */
export async function makeRawBundle(dir: string, listed: FixtureFile[], filesTarGz: Buffer): Promise<FixtureBundle> {
  await mkdir(dir, {recursive: true})
  await writeFile(join(dir, 'offline-files.tar.gz'), filesTarGz)
  await writeFile(
    join(dir, 'component-tools.tar.gz'),
    gzipSync(tarBytes([{name: 'component-tools/', type: '5', mode: 0o755}])),
  )
  await emptyImages(dir)
  const lock: LockJson = {apiVersion: 'airlock/v1', name: 'hostile', images: [], files: listed.map(lockEntry)}
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(lock, null, 2)}\n`)
  await writeSums(dir, ['offline-files.tar.gz', 'component-tools.tar.gz', 'offline-images.tar', 'bundle.json'])
  return {dir, lock, files: listed}
}

/** The hostile archives of issue 6, each with the listed files it pretends to carry. */
export function hostileArchives(): {
  name: string
  listed: FixtureFile[]
  tgz: () => Buffer
  /** How the import's own entry checks name the problem. */
  why: RegExp
  /** How it may be named when verify finds it first, if differently. */
  verifyWhy?: RegExp
}[] {
  const ok: FixtureFile = {path: 'h.example/ok.bin', data: Buffer.from('fine\n')}
  const evil: FixtureFile = {path: 'h.example/evil', data: Buffer.from('evil\n')}
  const top = 'offline-files'
  const okEntry: RawEntry = {name: `${top}/${ok.path}`, data: ok.data}
  const gz = (entries: RawEntry[]) => () => gzipSync(tarBytes(entries))
  return [
    {
      name: 'dot-dot',
      why: /\.\./,
      verifyWhy: /\.\.|outside the top folder/,
      listed: [ok],
      tgz: gz([okEntry, {name: `${top}/../../escaped.txt`, data: evil.data}]),
    },
    {
      name: 'absolute path',
      why: /absolute/,
      verifyWhy: /absolute|outside the top folder/,
      listed: [ok],
      tgz: gz([okEntry, {name: '/tmp/airlock-escaped.txt', data: evil.data}]),
    },
    {
      name: 'symlink out',
      why: /symbolic link/,
      verifyWhy: /symbolic link|symlink/,
      listed: [ok, evil],
      tgz: gz([okEntry, {name: `${top}/${evil.path}`, type: '2', linkname: '/etc/passwd'}]),
    },
    {
      name: 'hardlink',
      why: /hard link/,
      verifyWhy: /hard ?link/,
      listed: [ok, evil],
      tgz: gz([okEntry, {name: `${top}/${evil.path}`, type: '1', linkname: '/etc/passwd'}]),
    },
    {
      name: 'device',
      why: /char device/,
      verifyWhy: /char.device/,
      listed: [ok, evil],
      tgz: gz([okEntry, {name: `${top}/${evil.path}`, type: '3', mode: 0o600}]),
    },
    {name: 'fifo', why: /fifo/, listed: [ok, evil], tgz: gz([okEntry, {name: `${top}/${evil.path}`, type: '6'}])},
    {
      name: '10000-character name',
      why: /characters/,
      verifyWhy: /characters|not a clean|too long|outside|not listed/,
      listed: [ok],
      tgz: gz([okEntry, {name: `${top}/long`, data: evil.data, pax: {path: `${top}/${'a/'.repeat(4999)}b`}}]),
    },
    {
      name: 'NUL in name',
      why: /NUL/,
      verifyWhy: /NUL|not listed/,
      listed: [ok],
      tgz: gz([okEntry, {name: 'x', data: evil.data, pax: {path: `${top}/h.example/ok.bin\0.evil`}}]),
    },
    {
      name: 'truncated gzip',
      why: /gzip|truncated/,
      listed: [ok, {path: 'h.example/big.bin', data: fileData(300_000, 1)}],
      tgz: () => {
        const whole = gzipSync(tarBytes([okEntry, {name: `${top}/h.example/big.bin`, data: fileData(300_000, 1)}]))
        return whole.subarray(0, Math.floor(whole.length * 0.7))
      },
    },
    {
      name: 'gzip bomb',
      why: /gzip bomb/,
      listed: [ok],
      // A valid first entry, then 200 MB of zeros that gzip squeezes to about 200 KB.
      tgz: () =>
        gzipSync(Buffer.concat([tarBytes([okEntry]).subarray(0, -1024), Buffer.alloc(200 * 1024 * 1024)]), {level: 9}),
    },
    {
      name: 'entry missing from bundle.json',
      why: /not listed/,
      listed: [ok],
      tgz: gz([okEntry, {name: `${top}/${evil.path}`, data: evil.data}]),
    },
    {
      name: 'entry bigger than bundle.json says',
      why: /bigger/,
      verifyWhy: /bigger|bundle.json says/,
      listed: [ok, evil],
      tgz: gz([okEntry, {name: `${top}/${evil.path}`, data: Buffer.from('evil and then some more\n')}]),
    },
    {
      name: 'content differs from bundle.json',
      why: /mismatch/,
      verifyWhy: /mismatch|bundle.json says/,
      listed: [ok, evil],
      tgz: gz([okEntry, {name: `${top}/${evil.path}`, data: Buffer.from('EVIL\n')}]),
    },
  ]
}
