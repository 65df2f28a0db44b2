import type {KeyObject} from 'node:crypto'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {readSigningKey, SIGN_PASSWORD_ENV} from '../lib/bundle/format/bundle-signature.js'
import {baseNames, type DeltaSummary} from '../lib/bundle/format/delta.js'
import {type BundleResult, type BundleTool, writeBundle} from '../lib/bundle/write/bundle.js'
import type {WrittenFile} from '../lib/bundle/write/output.js'
import {SEED_TOOL_PLATFORMS, seedToolPlatforms, seedTools} from '../lib/bundle/write/seed-tools.js'
import {parseSize} from '../lib/bundle/write/size.js'
import {loadManifest} from '../lib/manifest/load.js'
import {DEFAULT_STORE} from '../lib/store/store.js'
import {formatBytes, formatDuration, formatRate} from '../lib/ui/format.js'
import type {Progress} from '../lib/ui/progress.js'
import type {CommandResult} from '../lib/ui/result.js'
import {columns, plural} from '../lib/ui/table.js'

/** bundle's result: one item per file written into the bundle folder, as SHA256SUMS lists them. */
export interface BundleCommandResult extends CommandResult<
  WrittenFile,
  {images: number; files: number; written: number; bytesIn: number; bytesOut: number}
> {
  name: string
  version?: string
  out: string
  store: string
  ms: number
  /** A delta (--since): what it carries and what it leaves to its bases. */
  delta?: DeltaSummary
}

/** Flags bundle and build share. */
export const bundleFlags = {
  out: Flags.string({description: 'Bundle folder to write (created if missing).', required: true}),
  split: Flags.string({
    description:
      'Write each archive as numbered parts of at most this size (e.g. 4G, 500M); `cat NAME.* > NAME` rejoins them.',
  }),
  importer: Flags.string({
    description: `Carry the standalone executable for this platform (${SEED_TOOL_PLATFORMS.join(', ')}) beside import.sh; repeatable. Default: this machine's.`,
    multiple: true,
    exclusive: ['no-importer'],
  }),
  'no-importer': Flags.boolean({description: 'Carry no importer: no standalone executable and no import.sh.'}),
  since: Flags.string({
    description:
      'Write a delta: leave out every blob, manifest and file this base holds (an earlier bundle folder, its bundle.json, or an `airlock inventory` file). Repeatable: the bases taken together.',
    multiple: true,
  }),
  'sign-key': Flags.string({
    description: `Sign the bundle: SHA256SUMS.sig, the signature of SHA256SUMS with this ECDSA P-256 private key (PEM, or cosign's encrypted cosign.key with its password in ${SIGN_PASSWORD_ENV}).`,
  }),
}

/** The --sign-key, read (and opened) before any long work, so a wrong password costs nothing. */
export async function bundleSignKey(flags: {'sign-key'?: string}): Promise<KeyObject | undefined> {
  return flags['sign-key'] === undefined ? undefined : readSigningKey(flags['sign-key'])
}

/** The importer files for the bundle flags; checked (and the executable built, from a clone) before any long work. */
export async function bundleTools(
  flags: {importer?: string[]; 'no-importer'?: boolean},
  progress: Progress,
): Promise<BundleTool[]> {
  if (flags['no-importer']) return []
  return seedTools(seedToolPlatforms(flags.importer), progress)
}

export default class Bundle extends BaseCommand<typeof Bundle> {
  static override description =
    'Write the bundle from the store: offline-files.tar.gz, component-tools.tar.gz, offline-images.tar (an oci-archive), the importer (airlock-linux-<arch> and import.sh), bundle.json and SHA256SUMS. Reproducible: the same store and the same airlock give the same bytes.'

  static override flags = {
    ...bundleFlags,
    store: Flags.string({description: 'Store folder.', default: DEFAULT_STORE}),
    manifest: Flags.string({
      description:
        'Bundle only the images and files this manifest names (it must have been pulled into the store); without it, everything in the store.',
    }),
    // There are three archives: more than 3 at once means nothing, so the flag stops there.
    concurrency: Flags.integer({description: 'Archives written at once, 1 to 3 [default: all three].', min: 1, max: 3}),
  }

  static override examples = [
    '<%= config.bin %> bundle --out ./bundle',
    '<%= config.bin %> bundle --out ./bundle --manifest manifest.yaml',
    '<%= config.bin %> bundle --out ./delta --manifest v2.yaml --since ./bundle-v1',
    '<%= config.bin %> bundle --store /data/store --out /media/usb/bundle --split 4G',
    '<%= config.bin %> bundle --out ./bundle --importer linux/amd64 --importer linux/arm64',
    'AIRLOCK_SIGN_PASSWORD=... <%= config.bin %> bundle --out ./bundle --sign-key cosign.key',
  ]

  protected override interruptNote(): string {
    return `Nothing in ${this.flags.out} was given its final name (the archives are written under temporary names and renamed at the end). Run the same command again to write the bundle.`
  }

  async run(): Promise<BundleCommandResult> {
    const f = this.flags
    const split = f.split === undefined ? undefined : parseSize(f.split)
    const manifest = f.manifest === undefined ? undefined : await loadManifest(f.manifest)
    const signKey = await bundleSignKey(f)
    const tools = await bundleTools(f, this.progress)
    if (!manifest)
      this.progress.info(
        `no --manifest: bundling everything in the store ${f.store} (every image and file any pull recorded)`,
      )
    const result = await writeBundle({
      manifest,
      store: f.store,
      out: f.out,
      split,
      concurrency: f.concurrency,
      tools,
      progress: this.progress,
      since: f.since,
      signKey,
    })
    return printBundle(result, (l) => this.out(l))
  }
}

/** Print what bundle wrote (aligned columns and a total line) and return it as bundle's result object. */
export function printBundle(r: BundleResult, out: (line: string) => void): BundleCommandResult {
  for (const l of columns(r.written.map((w) => [w.sha256, formatBytes(w.size).padStart(10), w.name]))) out(l)
  if (r.delta) {
    const d = r.delta
    out(
      `delta since ${baseNames(d.base)}: carries ${plural(d.carried.blobs, 'blob')} and ${plural(d.carried.files, 'file')} (${formatBytes(d.carried.bytes)}); leaves ${plural(d.fromBase.blobs, 'blob')} and ${plural(d.fromBase.files, 'file')} (${formatBytes(d.fromBase.bytes)}) to the base`,
    )
  }
  out(
    `total: ${r.name}${r.version ? ` ${r.version}` : ''}: ${plural(r.images, 'image')}, ${plural(r.files, 'file')} -> ${r.out}, ${formatBytes(r.bytesOut)} in ${formatDuration(r.ms)} (${formatRate(r.bytesOut, r.ms)})`,
  )
  return {
    name: r.name,
    ...(r.version === undefined ? {} : {version: r.version}),
    out: r.out,
    store: r.store,
    ms: r.ms,
    counts: {images: r.images, files: r.files, written: r.written.length, bytesIn: r.bytesIn, bytesOut: r.bytesOut},
    items: r.written,
    ...(r.delta ? {delta: r.delta} : {}),
  }
}
