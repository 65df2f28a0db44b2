import {stat} from 'node:fs/promises'

import {AirlockError} from '../../errors.js'
import type {Progress, TaskHandle} from '../../ui/progress.js'
import type {BundleFolder} from './bundle-folder.js'
import {PartsReader} from './parts.js'

/** The archives of a bundle, by what they carry. */
export type ArchiveScope = 'files' | 'packages' | 'images'

/** An archive read, whose progress task ends when the whole bundle has been checked. */
export interface OpenedArchive {
  name: string
  total: number
  task: TaskHandle
}

/** Where a check writes its problems: each its own list, so the report's order does not depend on timing. */
export type ProblemList = 'files' | 'packages' | 'images' | 'tools' | 'sums'

const REPORT_ORDER: ProblemList[] = ['files', 'packages', 'images', 'tools', 'sums']

/**
 * One verification of a bundle folder: the context every check reads (the
 * bundle, the progress, whether every JSON blob is kept) and what they
 * collect (problems, each file's sha256 as read, the JSON blobs, what the
 * archives carry intact). The archives are read at once, each check writing
 * only its own list.
 */
export class VerificationRun {
  private readonly lists = new Map<ProblemList, string[]>(REPORT_ORDER.map((k) => [k, []]))
  /** sha256 hex of every file in the folder, by name, as computed while reading. */
  readonly actual = new Map<string, string>()
  /** The manifests and indexes of the oci-archive (with `everyJson`, every JSON blob: signature payloads too), each checked against its digest. */
  readonly json = new Map<string, Buffer>()
  /** What the archives were found to hold, intact: blob digests, and files as `path\0sha256`. */
  readonly carried = {digests: new Set<string>(), files: new Set<string>()}

  constructor(
    readonly bundle: BundleFolder,
    readonly progress: Progress,
    /** Keep every JSON blob of the oci-archive, not only manifests and indexes (a signature check reads the payloads). */
    readonly everyJson = false,
  ) {}

  /** The problem list a check writes into. */
  problems(list: ProblemList): string[] {
    return this.lists.get(list)!
  }

  /** Every problem found, in report order. */
  allProblems(): string[] {
    return REPORT_ORDER.flatMap((k) => this.lists.get(k)!)
  }

  /** Record the sha256 of each file (each part) a reader read. */
  readAll(digests: Map<string, string>): void {
    for (const [part, hex] of digests) this.actual.set(part, hex)
  }

  /** An archive's parts opened for one read with its progress task; a missing part is a problem in `problems`, and undefined. */
  async openParts(
    name: string,
    problems: string[],
  ): Promise<{reader: PartsReader; archive: OpenedArchive} | undefined> {
    let paths: string[]
    try {
      paths = await this.bundle.parts(name)
    } catch (err) {
      problems.push(`${name}: ${err instanceof AirlockError ? err.message : String(err)}`)
      return undefined
    }
    let total = 0
    for (const p of paths) total += (await stat(p)).size
    const task = this.progress.task(`verify ${name}`, total)
    return {reader: new PartsReader(paths, (n) => task.advance(n)), archive: {name, total, task}}
  }
}

/** A read error in words: a broken gzip is named as one. */
export function describeReadError(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (typeof e?.code === 'string' && e.code.startsWith('Z_')) return `corrupt or truncated gzip (${e.message})`
  return e instanceof Error ? e.message : String(e)
}
