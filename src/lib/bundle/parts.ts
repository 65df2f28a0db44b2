import {createReadStream} from 'node:fs'
import {readdir, stat} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'

import {BundleError} from '../errors.js'

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
  if (parts.length === 0) throw new BundleError(`${name} is missing from ${dir} (neither the file nor its parts ${partName(name, 0)}, ... are there)`)
  const gaps = parts.map((p, i) => (p.n === i ? undefined : partName(name, i))).filter((x) => x !== undefined)
  if (gaps.length > 0) throw new BundleError(`${name} in ${dir}: part ${gaps[0]} is missing`)
  for (const p of parts) {
    const s = await stat(join(dir, p.file))
    if (!s.isFile()) throw new BundleError(`${join(dir, p.file)} is not a regular file`)
  }
  return parts.map((p) => join(dir, p.file))
}

/** The parts of `name` as one byte stream, read in order. */
export async function openBundleFile(dir: string, name: string): Promise<Readable> {
  return concatFiles(await bundlePartPaths(dir, name))
}

const READ_CHUNK = 1 << 20

/** Files read one after another as one stream (1 MiB reads: fewer syscalls on the hot path). */
export function concatFiles(paths: string[]): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (const p of paths) {
      for await (const chunk of createReadStream(p, {highWaterMark: READ_CHUNK})) yield chunk as Buffer
    }
  }
  return Readable.from(chunks(), {objectMode: false, highWaterMark: READ_CHUNK})
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
