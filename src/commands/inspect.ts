import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import type {CycloneDxBom} from '../lib/bundle/format/cyclonedx.js'
import {inspectBundle, inspectBundleBom, type InspectResult} from '../lib/bundle/format/inspect.js'
import {openBundle} from '../lib/bundle/format/open-bundle.js'
import {formatBytes, shortDigest} from '../lib/ui/format.js'
import {columns, plural} from '../lib/ui/table.js'

/**
 * inspect's result: counts, and its items in two lists, `images` and `files`
 * (the words the contract uses for what a bundle lists).
 */
export type InspectCommandResult = InspectResult & {
  counts: {images: number; referrers: number; binaries: number; packages: number; charts: number; bytes: number}
}

export default class Inspect extends BaseCommand<typeof Inspect> {
  static override description =
    'List what a bundle holds: images (ref, digest, platforms, size) and their referrers (signatures, SBOMs), binaries and packages (path, size, sha256), and the importer it carries. --format cyclonedx prints a CycloneDX 1.5 bill of materials instead.'

  static override args = {
    bundle: Args.string({description: 'Bundle folder.', required: true}),
  }

  static override flags = {
    format: Flags.string({
      description: 'text: the tables below; cyclonedx: a CycloneDX 1.5 JSON bill of materials.',
      options: ['text', 'cyclonedx'],
      default: 'text',
    }),
  }

  static override examples = [
    '<%= config.bin %> inspect ./bundle',
    '<%= config.bin %> inspect ./bundle --json',
    '<%= config.bin %> inspect ./bundle --format cyclonedx > bundle.cdx.json',
  ]

  async run(): Promise<InspectCommandResult | CycloneDxBom> {
    if (this.flags.format === 'cyclonedx') {
      const bom = await inspectBundleBom(await openBundle(this.args.bundle), {
        name: this.config.name,
        version: this.config.version,
      })
      this.out(JSON.stringify(bom, null, 2))
      return bom
    }
    const r = inspectBundle(await openBundle(this.args.bundle))
    this.out(`${r.name}${r.version ? ` ${r.version}` : ''}`)
    this.out('')
    this.out(`IMAGES (${r.images.length})`)
    this.table(
      ['REF', 'DIGEST', 'PLATFORMS', 'SIZE'],
      r.images.map((i) => [i.ref, shortDigest(i.digest), i.platforms.join(',') || '-', formatBytes(i.size)]),
    )
    // DIGEST is what a registry the bundle is imported into serves; a filtered index differs from upstream.
    for (const i of r.images.filter((i) => i.sourceDigest))
      this.out(`  ${i.ref}: a platform subset; the mirror serves ${i.digest}, not upstream's ${i.sourceDigest}`)
    const referrers = r.images.flatMap((i) => i.referrers.map((x) => ({ref: i.ref, ...x})))
    if (referrers.length > 0) {
      this.out('')
      this.out(`REFERRERS (${referrers.length})`)
      this.table(
        ['IMAGE', 'DIGEST', 'ARTIFACT TYPE', 'SUBJECT', 'TAG'],
        referrers.map((x) => [x.ref, shortDigest(x.digest), x.artifactType, shortDigest(x.subject), x.tag ?? '-']),
      )
    }
    this.out('')
    this.out(`FILES (${r.files.length})`)
    if (!r.delta)
      this.table(
        ['KIND', 'PATH', 'SIZE', 'SHA256'],
        r.files.map((f) => [f.kind, f.path, formatBytes(f.size), f.sha256.slice(0, 12)]),
      )
    else
      this.table(
        ['KIND', 'PATH', 'SIZE', 'SHA256', 'IN'],
        r.files.map((f) => [f.kind, f.path, formatBytes(f.size), f.sha256.slice(0, 12), f.fromBase ? 'base' : 'delta']),
      )
    const os = r.files.filter((f) => f.os)
    if (os.length > 0) {
      this.out('')
      this.out(`OS PACKAGES (${os.length})`)
      this.table(
        ['NAME', 'VERSION', 'ARCH', 'SIZE'],
        os.map((f) => [f.os!.name, f.os!.version, f.os!.architecture, formatBytes(f.size)]),
      )
    }
    if (r.delta) {
      const d = r.delta
      this.out('')
      this.out(
        `DELTA since ${d.base.map((b) => `${b.name}${b.version ? ` ${b.version}` : ''} (bundle.json sha256 ${b.lockSha256.slice(0, 12)})`).join(', ')}`,
      )
      this.table(
        ['', 'BLOBS', 'FILES', 'SIZE'],
        [
          ['carried', String(d.carried.blobs), String(d.carried.files), formatBytes(d.carried.bytes)],
          ['expected from base', String(d.fromBase.blobs), String(d.fromBase.files), formatBytes(d.fromBase.bytes)],
        ],
      )
    }
    const kinds = (k: string) => r.files.filter((f) => f.kind === k).length
    const counts = {
      images: r.images.length,
      referrers: r.images.reduce((n, i) => n + i.referrers.length, 0),
      binaries: kinds('binary'),
      packages: kinds('package'),
      charts: kinds('chart'),
      bytes: r.images.reduce((n, i) => n + i.size, 0) + r.files.reduce((n, f) => n + f.size, 0),
    }
    this.out('')
    this.out(`TOOLS (${r.tools.length})`)
    this.table(
      ['PATH', 'PLATFORM', 'SIZE', 'SHA256'],
      r.tools.map((t) => [
        t.fromBase ? `${t.path} (in the base)` : t.path,
        t.platform ?? '-',
        formatBytes(t.size),
        t.sha256.slice(0, 12),
      ]),
    )
    this.out('')
    this.out(
      `total: ${plural(counts.images, 'image')}, ${plural(counts.referrers, 'referrer')}, ${plural(counts.binaries, 'binary', 'binaries')}, ${plural(counts.packages, 'package')}, ${plural(counts.charts, 'chart')}, ${formatBytes(counts.bytes)}`,
    )
    return {name: r.name, version: r.version, counts, images: r.images, files: r.files, tools: r.tools, delta: r.delta}
  }

  private table(head: string[], rows: string[][]): void {
    if (rows.length === 0) return this.out('  (none)')
    for (const l of columns(rows, {head, indent: '  '})) this.out(l)
  }
}
