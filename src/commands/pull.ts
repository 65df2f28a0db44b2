import {Args, Flags} from '@oclif/core'

import {BaseCommand, type CommandFlags} from '../cli/base-command.js'
import {loginCredentials, loginFlags} from '../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../lib/defaults.js'
import {UsageError} from '../lib/errors.js'
import {defaultLowSpeed} from '../lib/fetch/low-speed.js'
import {loadManifest} from '../lib/manifest/load.js'
import {PLATFORM_HINT, PLATFORM_RE} from '../lib/oci/platform.js'
import type {FilePullResult} from '../lib/pull/files.js'
import type {ImagePullResult} from '../lib/pull/images.js'
import {planPull, pull, type PullOptions, type PullPlan, type PullResult} from '../lib/pull/pull.js'
import {formatSelections} from '../lib/select/report.js'
import type {RepositoriesReport, SelectionReport} from '../lib/select/resolve.js'
import {DEFAULT_STORE} from '../lib/store/store.js'
import {formatBytes, shortDigest} from '../lib/ui/format.js'
import type {Progress} from '../lib/ui/progress.js'
import type {CommandResult} from '../lib/ui/result.js'
import {columns, plural} from '../lib/ui/table.js'

/** One row of pull's result: an image, or a binary, package or chart. */
export type PullItem =
  | ({kind: 'image'; size: number; reused: boolean} & Omit<ImagePullResult, 'lock'>)
  | ({kind: FilePullResult['kind']} & Omit<FilePullResult, 'lock' | 'kind'>)

export interface PullCommandResult extends CommandResult<
  PullItem,
  {images: number; files: number; bytes: number; bytesFetched: number; reused: number}
> {
  store: string
  /** What each tag selection took and left, when the manifest has selections. */
  selections?: SelectionReport[]
  repositories?: RepositoriesReport[]
  /** The manifest's spec.osPackages, when it has any: repositories mirrored, packages in their closures, bytes fetched for them. */
  osPackages?: {repositories: number; packages: number; bytesFetched: number}
}

/** `pull --dry-run`: what a pull would take, fetch and reuse, selections resolved; nothing fetched. */
export interface PullPlanResult extends CommandResult<
  PullPlan['images'][number] | PullPlan['files'][number],
  {images: number; files: number; bytes: number; bytesToFetch: number; bytesInStore: number; sizeUnknown: number}
> {
  dryRun: true
  store: string
  selections: SelectionReport[]
  repositories: RepositoriesReport[]
}

/**
 * The dry run's result and stdout lines: the selection report, then each
 * image (platforms taken, size, bytes to fetch) and file, and a total line
 * whose numbers are the ones the pull would report (its size and bytesFetched).
 */
export function planReport(p: PullPlan): {result: PullPlanResult; lines: string[]} {
  const known = p.files.filter((f) => f.size !== null)
  const counts = {
    images: p.images.length,
    files: p.files.length,
    bytes: p.images.reduce((n, i) => n + i.size, 0) + known.reduce((n, f) => n + f.size!, 0),
    bytesToFetch: p.images.reduce((n, i) => n + i.bytesToFetch, 0) + known.reduce((n, f) => n + f.bytesToFetch!, 0),
    bytesInStore:
      p.images.reduce((n, i) => n + i.bytesInStore, 0) + p.files.reduce((n, f) => n + (f.reused ? f.size! : 0), 0),
    sizeUnknown: p.files.length - known.length,
  }
  const fetch = (n: number | null, reused: boolean) =>
    n === null ? 'size unknown' : reused || n === 0 ? 'in the store' : formatBytes(n)
  const rows = [
    ...p.images.map((i) => [
      'image',
      i.ref,
      shortDigest(i.digest),
      i.platforms.join(',') || '-',
      formatBytes(i.size),
      fetch(i.bytesToFetch, false),
    ]),
    ...p.files.map((f) => [
      f.kind,
      f.path,
      `sha256:${f.sha256.slice(0, 12)}`,
      '-',
      f.size === null ? 'size unknown' : formatBytes(f.size),
      fetch(f.bytesToFetch, f.reused),
    ]),
  ]
  const unknown = counts.sizeUnknown > 0 ? `, and ${plural(counts.sizeUnknown, 'file')} of unknown size` : ''
  const lines = [
    ...formatSelections(p.selections, p.repositories),
    ...columns(rows, {head: ['KIND', 'NAME', 'DIGEST', 'PLATFORMS', 'SIZE', 'TO FETCH']}),
    `would pull ${plural(p.images.length, 'image')} and ${plural(p.files.length, 'file')} into ${p.store}: ` +
      `fetch ${formatBytes(counts.bytesToFetch)} of ${formatBytes(counts.bytesToFetch + counts.bytesInStore)} (${formatBytes(counts.bytesInStore)} already in the store)${unknown}`,
  ]
  if (p.osRepositories > 0)
    lines.push(
      `os packages: ${plural(p.osRepositories, 'repository', 'repositories')} not planned by a dry run (pull reads their indexes; docs/os-packages.md)`,
    )
  return {
    result: {
      dryRun: true,
      store: p.store,
      counts,
      items: [...p.images, ...p.files],
      selections: p.selections,
      repositories: p.repositories,
    },
    lines,
  }
}

/** pull's result object from the library's, and the stdout lines for it: aligned columns and a total line. */
export function pullReport(r: PullResult): {result: PullCommandResult; lines: string[]} {
  const items: PullItem[] = [
    ...r.images.map(({lock, ...i}): PullItem => ({kind: 'image', ...i, size: lock.size, reused: i.bytesFetched === 0})),
    ...r.files.map(({lock: _lock, ...f}): PullItem => f),
  ]
  const counts = {
    images: r.images.length,
    files: r.files.length,
    bytes: items.reduce((n, i) => n + i.size, 0),
    bytesFetched: items.reduce((n, i) => n + i.bytesFetched, 0),
    reused: items.filter((i) => i.reused).length,
  }
  const rows = items.map((i) =>
    i.kind === 'image'
      ? [
          i.kind,
          i.ref,
          shortDigest(i.digest),
          i.platforms.join(',') || '-',
          formatBytes(i.size),
          i.reused ? 'in the store' : formatBytes(i.bytesFetched),
        ]
      : [
          i.kind,
          i.path,
          `sha256:${i.sha256.slice(0, 12)}`,
          '-',
          formatBytes(i.size),
          i.reused ? 'in the store' : formatBytes(i.bytesFetched),
        ],
  )
  const lines = [
    ...columns(rows, {head: ['KIND', 'NAME', 'DIGEST', 'PLATFORMS', 'SIZE', 'FETCHED']}),
    `total: ${plural(items.length, 'item')} (${plural(counts.images, 'image')}, ${plural(counts.files, 'file')}), ${formatBytes(counts.bytes)} in ${r.store}; ` +
      `fetched ${formatBytes(counts.bytesFetched)}, ${counts.reused} already in the store`,
  ]
  const selections = r.selections ? {selections: r.selections, repositories: r.repositories ?? []} : {}
  const os = r.osPackages
    ? {
        osPackages: {
          repositories: r.osPackages.repositories.length,
          packages: r.osPackages.packages,
          bytesFetched: r.osPackages.bytesFetched,
        },
      }
    : {}
  if (os.osPackages)
    lines.push(
      `os packages: ${plural(os.osPackages.packages, 'package')} from ${os.osPackages.repositories} repositor${os.osPackages.repositories === 1 ? 'y' : 'ies'} (docs/os-packages.md), fetched ${formatBytes(os.osPackages.bytesFetched)}`,
    )
  return {
    result: {store: r.store, counts, items, ...selections, ...os},
    lines: [...formatSelections(r.selections ?? [], r.repositories ?? []), ...lines],
  }
}

export default class Pull extends BaseCommand<typeof Pull> {
  static override description =
    'Fetch every image, binary and package of a manifest into the store: concurrent, deduplicated, incremental and resumable.'

  static override args = {
    manifest: Args.string({description: 'Path of the manifest (YAML).', required: true}),
  }

  static override flags = {
    'dry-run': Flags.boolean({
      description:
        'Read the manifests only (and small configs, checksum files, file sizes): print per image the platforms a pull takes (failing as it would on one the image lacks), per image and file the bytes to fetch or already in the store, and a total; write nothing.',
    }),
    store: Flags.string({description: 'Store folder.', default: DEFAULT_STORE}),
    concurrency: Flags.integer({
      description: 'Downloads at once (blobs and files share them).',
      default: DEFAULT_CONCURRENCY,
      min: 1,
      max: 256,
    }),
    platform: Flags.string({
      description: 'Platform to keep (os/arch[/variant]); repeat for more. Overrides the manifest.',
      multiple: true,
    }),
    'ca-file': Flags.string({description: 'Extra trusted CA (PEM) for every host; repeatable.', multiple: true}),
    ...loginFlags({
      username: 'Registry username (else the Docker config, else anonymous).',
      password: 'Registry password or token.',
    }),
    'low-speed-limit': Flags.integer({
      description: `Abandon a download slower than this many bytes per second for --low-speed-time, and retry it from where it stopped (Range); 0 turns it off. [default: ${defaultLowSpeed.bytesPerSecond}]`,
      min: 0,
    }),
    'low-speed-time': Flags.integer({
      description: `Seconds a download may stay under --low-speed-limit. [default: ${defaultLowSpeed.seconds}]`,
      min: 1,
    }),
  }

  static override examples = [
    '<%= config.bin %> pull manifest.yaml',
    '<%= config.bin %> pull manifest.yaml --dry-run',
    '<%= config.bin %> pull manifest.yaml --store /data/store --platform linux/amd64 --platform linux/arm64',
  ]

  /** The pull flags (shared with `build`) as library options, checked before any download (a password on standard input read here). */
  static async pullOptions(f: Omit<CommandFlags<typeof Pull>, 'dry-run'>, progress: Progress): Promise<PullOptions> {
    const login = await loginCredentials(f)
    for (const p of f.platform ?? []) {
      if (!PLATFORM_RE.test(p)) throw new UsageError(`--platform ${p}: ${PLATFORM_HINT}`)
    }
    return {
      store: f.store,
      concurrency: f.concurrency,
      progress,
      caFiles: f['ca-file'],
      platforms: f.platform,
      username: login?.username,
      password: login?.password,
      lowSpeed: {
        bytesPerSecond: f['low-speed-limit'] ?? defaultLowSpeed.bytesPerSecond,
        seconds: f['low-speed-time'] ?? defaultLowSpeed.seconds,
      },
    }
  }

  protected override interruptNote(done: number, of: number): string {
    const store = this.flags.store
    return (
      `${done} of ${plural(of, 'item')} had finished and are kept in the store ${store}; partial downloads stay under ${store}/.tmp/. ` +
      'Run the same command again to resume: finished items are not fetched again, partial ones go on where they stopped (HTTP Range).'
    )
  }

  async run(): Promise<PullCommandResult | PullPlanResult> {
    const options = await Pull.pullOptions(this.flags, this.progress)
    const manifest = await loadManifest(this.args.manifest)
    if (this.flags['dry-run']) {
      const {result, lines} = planReport(await planPull(manifest, options))
      for (const l of lines) this.out(l)
      return result
    }
    const {result, lines} = pullReport(await pull(manifest, options))
    for (const l of lines) this.out(l)
    return result
  }
}
