import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {bundleKeyFlags, checkBundleKey} from '../cli/bundle-key-flags.js'
import {baseNames, type DeltaSummary, deltaSummary} from '../lib/bundle/format/delta.js'
import {openBundle} from '../lib/bundle/format/open-bundle.js'
import type {ImageSignature} from '../lib/bundle/format/signatures.js'
import {verifyWithBases} from '../lib/bundle/format/verify.js'
import {BundleError, FailureError} from '../lib/errors.js'
import {readPublicKey} from '../lib/oci/cosign.js'
import {formatBytes} from '../lib/ui/format.js'
import {plural} from '../lib/ui/table.js'

export interface VerifyResult {
  ok: true
  bundle: string
  counts: {images: number; files: number; checked: number}
  /** Every file of the bundle folder that was read, with its sha256. */
  items: {name: string; sha256: string}[]
  /** With --key: each image's cosign signature status. */
  signatures?: ImageSignature[]
  /** A delta: what it carries and what it expects from its bases (checked against them with --base). */
  delta?: DeltaSummary & {basesChecked: string[]}
}

export default class Verify extends BaseCommand<typeof Verify> {
  static override description =
    "Check every checksum and digest in a bundle: SHA256SUMS, each archived file against bundle.json, every blob and manifest reference of the images and their referrers. Lists every problem; exit 2 if there is any. With --key, also check each image's cosign signatures offline: a bad signature (or, with --require-signatures, an unsigned image) is exit 1."

  static override args = {
    bundle: Args.string({description: 'Bundle folder.', required: true}),
  }

  static override flags = {
    ...bundleKeyFlags,
    key: Flags.string({
      description: 'cosign public key (PEM): report each image as signed, unsigned or bad; a bad signature fails.',
    }),
    'require-signatures': Flags.boolean({description: 'With --key: an unsigned image fails too.', dependsOn: ['key']}),
    base: Flags.string({
      description:
        'For a delta: a bundle folder it was built against (repeatable, for a chain of deltas); checks that they all together hold every digest and file of its bundle.json.',
      multiple: true,
    }),
  }

  static override examples = [
    '<%= config.bin %> verify ./bundle',
    '<%= config.bin %> verify ./bundle --json',
    '<%= config.bin %> verify ./bundle --key cosign.pub --require-signatures',
    '<%= config.bin %> verify ./delta --base ./bundle-v1',
  ]

  async run(): Promise<VerifyResult> {
    await checkBundleKey(this.args.bundle, this.flags['bundle-key'])
    const key = this.flags.key === undefined ? undefined : await readPublicKey(this.flags.key)
    const bases = this.flags.base ?? []
    const opts = {progress: this.progress, key, requireSignatures: this.flags['require-signatures']}
    const bundle = await openBundle(this.args.bundle)
    const report = bases.length > 0 ? await verifyWithBases(bundle, bases, opts) : await bundle.verify(opts)
    if (!report.ok) {
      // An invalid bundle is exit 2, as for every import that refuses it.
      const n = report.problems.length
      throw new BundleError(`${this.args.bundle}: the bundle failed verification (${n} problem${n === 1 ? '' : 's'})`, {
        details: report.problems,
      })
    }
    for (const s of report.signatures ?? []) this.out(`${s.status.padEnd(8)}  ${s.ref}@${s.digest}`)
    const failed = report.signatureProblems ?? []
    if (failed.length > 0) {
      // The bundle is sound, its signatures are not what the key holder signed: a failure (exit 1), not a bad bundle.
      const required = this.flags['require-signatures']
      const bad = (report.signatures ?? []).filter((s) => s.status === 'bad' || (required && s.status === 'unsigned'))
      throw new FailureError(
        `${this.args.bundle}: ${plural(bad.length, 'image')} failed the signature check with ${this.flags.key}`,
        {
          details: [...bad.map((s) => `${s.status} ${s.ref}@${s.digest}`), ...failed],
        },
      )
    }
    const l = report.lock
    const result: VerifyResult = {
      ok: true,
      bundle: this.args.bundle,
      counts: {images: l.images.length, files: l.files.length, checked: report.files.length},
      items: report.files,
      ...(report.signatures ? {signatures: report.signatures} : {}),
    }
    const delta = deltaSummary(l)
    if (delta) result.delta = {...delta, basesChecked: bases}
    for (const f of report.files) this.out(`${f.sha256}  ${f.name}`)
    if (delta) {
      this.out(
        `delta: carries ${plural(delta.carried.blobs, 'blob')} and ${plural(delta.carried.files, 'file')} (${formatBytes(delta.carried.bytes)}), all checked`,
      )
      this.out(
        `expects from its base${delta.base.length === 1 ? '' : 's'} (${baseNames(delta.base)}): ${plural(delta.fromBase.blobs, 'blob')} and ${plural(delta.fromBase.files, 'file')} (${formatBytes(delta.fromBase.bytes)}), ${bases.length > 0 ? `all found in ${bases.join(', ')}` : 'not checked (give --base DIR to check them)'}`,
      )
    }
    this.out(
      `${this.args.bundle}: OK (${plural(l.images.length, 'image')}, ${plural(l.files.length, 'file')}; ${plural(report.files.length, 'bundle file')} checked)`,
    )
    return result
  }
}
