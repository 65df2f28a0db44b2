import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readdir, stat} from 'node:fs/promises'
import {basename, join} from 'node:path'

import {SEQUENTIAL_READ_BYTES} from '../../defaults.js'
import {BundleError} from '../../errors.js'

/**
 * `--split` writes an archive as numbered parts `NAME.000`, `NAME.001`, ...
 * so `cat NAME.* > NAME` rejoins them. Every reader goes through here and
 * sees one archive either way.
 */
export const PART_DIGITS = 3

export function partName(name: string, index: number): string {
  return `${name}.${String(index).padStart(PART_DIGITS, '0')}`
}

/**
 * The files that make up `name` in `dir`: `[dir/name]` when the whole file is
 * there (it wins over parts, e.g. after a `cat` rejoin), else the numbered
 * parts in order. A gap in the numbering or nothing at all is a BundleError.
 */
export async function bundlePartPaths(dir: string, name: string): Promise<string[]> {
  const whole = join(dir, name)
  const st = await stat(whole).catch(() => undefined)
  if (st?.isFile()) return [whole]
  if (st) throw new BundleError(`${whole} is not a regular file`)
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    throw new BundleError(`cannot read the bundle folder ${dir}: ${(err as Error).message}`, {cause: err})
  }
  const re = new RegExp(`^${escapeRegExp(name)}\\.(\\d{${PART_DIGITS},})$`)
  const parts = entries
    .map((e) => ({e, m: re.exec(e)}))
    .filter((x) => x.m !== null)
    .map((x) => ({file: x.e, n: Number(x.m![1])}))
    .sort((a, b) => a.n - b.n)
  if (parts.length === 0)
    throw new BundleError(
      `${name} is missing from ${dir} (neither the file nor its parts ${partName(name, 0)}, ... are there)`,
    )
  const gaps = parts.map((p, i) => (p.n === i ? undefined : partName(name, i))).filter((x) => x !== undefined)
  if (gaps.length > 0) throw new BundleError(`${name} in ${dir}: part ${gaps[0]} is missing`)
  for (const p of parts) {
    const s = await stat(join(dir, p.file))
    if (!s.isFile()) throw new BundleError(`${join(dir, p.file)} is not a regular file`)
  }
  return parts.map((p) => join(dir, p.file))
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/**
 * An archive's parts read in order, each hashed as it flows. Resumable: when
 * the content check stops early (a broken gzip), `finish()` reads the rest so
 * SHA256SUMS is still checked for every part.
 */
export class PartsReader {
  private part = 0
  private offset = 0
  private hash: Hash = createHash('sha256')
  readonly digests = new Map<string, string>()

  constructor(
    private readonly paths: string[],
    private readonly onBytes: (n: number) => void = () => {},
  ) {}

  /** Settles when the current chunks() generator has fully stopped (it may be mid-read when its consumer gives up). */
  private active: Promise<void> = Promise.resolve()

  async *chunks(): AsyncGenerator<Buffer> {
    await this.active
    let release = () => {}
    this.active = new Promise((r) => (release = r))
    try {
      yield* this.read()
    } finally {
      release()
    }
  }

  private async *read(): AsyncGenerator<Buffer> {
    while (this.part < this.paths.length) {
      const stream = createReadStream(this.paths[this.part], {start: this.offset, highWaterMark: SEQUENTIAL_READ_BYTES})
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        this.hash.update(chunk)
        this.offset += chunk.length
        this.onBytes(chunk.length)
        yield chunk
      }
      this.digests.set(basename(this.paths[this.part]), this.hash.digest('hex'))
      this.hash = createHash('sha256')
      this.part++
      this.offset = 0
    }
  }

  async finish(): Promise<void> {
    for await (const c of this.chunks()) void c
  }
}
