import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {StringDecoder} from 'node:string_decoder'

import type {BundleLock} from '../../bundle-json.js'
import {SEQUENTIAL_READ_BYTES} from '../../defaults.js'
import {BundleError} from '../../errors.js'
import {BUNDLE_FILES} from './bundle-files.js'
import {bundlePartPaths} from './parts.js'
import {parseBundleLock} from './read-lock.js'
import {parseSums, type SumLine} from './sums.js'

/**
 * A bundle folder, opened: where it is and its bundle.json, read and
 * checked once. The read side's modules (verify, archive entries) take it;
 * `Bundle` (open-bundle.ts) is this with what they do hung off it.
 */
export class BundleFolder {
  constructor(
    readonly dir: string,
    readonly lock: BundleLock,
    /** sha256 hex of bundle.json as it was read, as a delta's `base[].lockSha256` names it. */
    readonly lockSha256: string,
  ) {}

  /** A file of the folder, by its name. */
  path(name: string): string {
    return join(this.dir, name)
  }

  /** The files that make up an archive: the whole file, else its split parts in order (see parts.ts). */
  parts(name: string): Promise<string[]> {
    return bundlePartPaths(this.dir, name)
  }

  /** SHA256SUMS's lines (malformed ones apart, by line number); undefined when it cannot be read. */
  async sums(): Promise<{lines: SumLine[]; bad: number[]} | undefined> {
    const text = await readFile(this.path(BUNDLE_FILES.sums), 'utf8').catch(() => undefined)
    return text === undefined ? undefined : parseSums(text)
  }
}

/**
 * `DIR/bundle.json`, checked against the lock's shape. Missing, unparsable or
 * malformed is a BundleError (exit 2) listing every problem found.
 */
export async function openBundleFolder(dir: string): Promise<BundleFolder> {
  const file = join(dir, BUNDLE_FILES.lock)
  const hash = createHash('sha256')
  const decoder = new StringDecoder('utf8')
  let text = ''
  try {
    // In pieces (see SEQUENTIAL_READ_BYTES): a lock of thousands of images is megabytes.
    for await (const piece of createReadStream(file, {highWaterMark: SEQUENTIAL_READ_BYTES}) as AsyncIterable<Buffer>) {
      hash.update(piece)
      text += decoder.write(piece)
    }
    text += decoder.end()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new BundleError(
      code === 'ENOENT' ? `${file} is missing: not a bundle folder` : `cannot read ${file}: ${(err as Error).message}`,
      {cause: err},
    )
  }
  return new BundleFolder(dir, parseBundleLock(text, file), hash.digest('hex'))
}
