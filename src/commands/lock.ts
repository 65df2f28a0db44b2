import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {loginCredentials, loginFlags} from '../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../lib/defaults.js'
import {redactUrl} from '../lib/fetch/http.js'
import {type LockedImage, lockManifest, type LockResult} from '../lib/select/pin.js'
import {formatSelections} from '../lib/select/report.js'
import type {CommandResult} from '../lib/ui/result.js'
import {columns, plural} from '../lib/ui/table.js'

/** What lock did, summed up: images of the locked manifest, how many were pinned now or already, selections and repositories entries expanded. */
export type LockCounts = {
  images: number
  pinned: number
  unchanged: number
  selections: number
  repositories: number
  /** Binaries and packages named by checksumUrl pinned to their sha256 now. */
  files: number
}

/** lock's result: one item per image of the locked manifest (reference, digest, pinned or unchanged, the selection it came from), and the selection report. */
export interface LockCommandResult extends CommandResult<LockedImage, LockCounts>, Omit<LockResult, 'images'> {}

/** lock's result object and stdout lines: the selection report, aligned columns, a total line. */
export function lockReport(result: LockResult): {result: LockCommandResult; lines: string[]} {
  const {images, ...rest} = result
  const counts: LockCounts = {
    images: images.length,
    pinned: images.filter((i) => i.action === 'pinned').length,
    unchanged: images.filter((i) => i.action === 'unchanged').length,
    // The report has a row per repository a spec.repositories entry took: count the images' selections apart.
    selections: new Set(
      result.selections.map((s) => s.field).filter((f) => !result.repositories.some((r) => r.field === f)),
    ).size,
    repositories: result.repositories.length,
    files: result.files.filter((f) => f.action === 'pinned').length,
  }
  const expanded = counts.selections + counts.repositories
  const lines = [
    ...formatSelections(result.selections, result.repositories),
    ...columns([
      ...images.map((i) => [i.ref.replace(/@sha256:.*$/, ''), i.digest, i.action, i.from ?? '']),
      ...result.files.map((f) => [
        redactUrl(f.url),
        `sha256:${f.sha256}`,
        f.action,
        `from ${redactUrl(f.checksumUrl)}`,
      ]),
    ]),
    result.changed
      ? `total: ${plural(counts.images, 'image')} in ${result.out}: ${counts.pinned} pinned now, ${counts.unchanged} pinned already; ${plural(expanded, 'selection')} expanded${counts.files > 0 ? `; ${plural(counts.files, 'file')} pinned to the sha256 of its checksumUrl` : ''}`
      : `total: ${plural(counts.images, 'image')}${result.files.length > 0 ? `, ${plural(result.files.length, 'file')}` : ''}; ${result.out} was locked already, nothing changed`,
  ]
  return {result: {...rest, counts, items: images}, lines}
}

export default class Lock extends BaseCommand<typeof Lock> {
  static override description =
    'Resolve every tag selection and every tag of a manifest to a digest, and every checksumUrl to the sha256 its file gives, and write the manifest back pinned (ref: host/repo:tag@sha256:..., sha256: beside checksumUrl), comments and key order kept. Locking a locked manifest changes nothing.'

  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  static override flags = {
    out: Flags.string({description: 'Write the locked manifest here instead of over MANIFEST.'}),
    concurrency: Flags.integer({
      description: 'Tag lists and digests read at once.',
      default: DEFAULT_CONCURRENCY,
      min: 1,
      max: 256,
    }),
    'ca-file': Flags.string({description: 'Extra trusted CA (PEM) for every host; repeatable.', multiple: true}),
    ...loginFlags({
      username: 'Registry username (else the Docker config, else anonymous).',
      password: 'Registry password or token.',
    }),
  }

  static override examples = [
    '<%= config.bin %> lock manifest.yaml',
    '<%= config.bin %> lock manifest.yaml --out manifest.lock.yaml',
  ]

  async run(): Promise<LockCommandResult> {
    const f = this.flags
    const login = await loginCredentials(f)
    const result = await lockManifest(this.args.manifest, {
      out: f.out,
      concurrency: f.concurrency,
      caFiles: f['ca-file'],
      username: login?.username,
      password: login?.password,
      progress: this.progress,
    })
    const {result: out, lines} = lockReport(result)
    for (const l of lines) this.out(l)
    return out
  }
}
