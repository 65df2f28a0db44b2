import {Args} from '@oclif/core'

import {BaseCommand} from '../lib/base-command.js'
import {inspectBundle, type InspectResult} from '../lib/bundle/inspect.js'
import {formatBytes, shortDigest} from '../lib/ui/format.js'

export default class Inspect extends BaseCommand<typeof Inspect> {
  static override description = 'List what a bundle holds: images (ref, digest, platforms, size), binaries and packages (path, size, sha256).'

  static override args = {
    bundle: Args.string({description: 'Bundle folder.', required: true}),
  }

  static override examples = ['<%= config.bin %> inspect ./bundle', '<%= config.bin %> inspect ./bundle --json']

  async run(): Promise<InspectResult> {
    const r = await inspectBundle(this.args.bundle)
    this.out(`${r.name}${r.version ? ` ${r.version}` : ''}`)
    this.out('')
    this.out(`IMAGES (${r.images.length})`)
    this.table(['REF', 'DIGEST', 'PLATFORMS', 'SIZE'], r.images.map((i) => [i.ref, shortDigest(i.digest), i.platforms.join(',') || '-', formatBytes(i.size)]))
    // DIGEST is what a registry the bundle is imported into serves; a filtered index differs from upstream.
    for (const i of r.images.filter((i) => i.sourceDigest)) this.out(`  ${i.ref}: a platform subset; the mirror serves ${i.digest}, not upstream's ${i.sourceDigest}`)
    this.out('')
    this.out(`FILES (${r.files.length})`)
    this.table(['KIND', 'PATH', 'SIZE', 'SHA256'], r.files.map((f) => [f.kind, f.path, formatBytes(f.size), f.sha256.slice(0, 12)]))
    return r
  }

  private table(head: string[], rows: string[][]): void {
    if (rows.length === 0) return this.out('  (none)')
    const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)))
    const line = (cells: string[]) => `  ${cells.map((v, c) => (c === cells.length - 1 ? v : v.padEnd(widths[c]))).join('  ')}`
    this.out(line(head))
    for (const r of rows) this.out(line(r))
  }
}
