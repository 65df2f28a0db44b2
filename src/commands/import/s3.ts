import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {bundleKeyFlags, checkBundleKey} from '../../cli/bundle-key-flags.js'
import {s3TargetFlags, s3TargetOptions} from '../../cli/target-flags.js'
import {DEFAULT_CONCURRENCY} from '../../lib/defaults.js'
import {baseCheckedLine, type FileImportResult, fileImportResult} from '../../lib/importers/result.js'
import {formatBytes} from '../../lib/ui/format.js'
import {plural} from '../../lib/ui/table.js'

export interface ImportS3Result extends FileImportResult {
  /** The URL the cluster should fetch binaries from (externalRepoEndpoint). */
  endpoint: string
  s3Endpoint: string
  bucket: string
  prefix: string
  /** Per OS repository, the source file a node needs, put beside it. */
  osSources: {path: string; text: string}[]
}

export default class ImportS3 extends BaseCommand<typeof ImportS3> {
  static override description =
    "Upload a bundle's binaries and packages to an S3-compatible store, streamed from the archives, each object carrying its sha256."

  static override examples = [
    '<%= config.bin %> import s3 ./bundle --endpoint https://rgw.local:7480 --bucket offline --prefix k8s --create-bucket',
    'AWS_PROFILE=seed <%= config.bin %> import s3 ./bundle --endpoint https://rgw.local --bucket offline --cluster-config clusterConfig.yaml',
  ]

  static override args = {
    bundle: Args.directory({description: 'Bundle folder (bundle.json, SHA256SUMS, the archives).', required: true}),
  }

  static override flags = {
    ...bundleKeyFlags,
    ...s3TargetFlags,
    bucket: Flags.string({description: 'Bucket to upload into.', required: true}),
    'create-bucket': Flags.boolean({description: 'Create the bucket when it does not exist.'}),
    'public-read': Flags.boolean({
      description:
        'Set a bucket policy that lets anyone read (s3:GetObject) the objects under the prefix, as an installer fetching externalRepoEndpoint/<path> over plain HTTP needs.',
    }),
    concurrency: Flags.integer({
      description: 'Uploads (or parts of one large object) in flight.',
      default: DEFAULT_CONCURRENCY,
      min: 1,
    }),
    'part-size': Flags.integer({
      description: 'Multipart part size in MiB; larger files are uploaded in parts.',
      default: 8,
      min: 5,
    }),
    'cluster-config': Flags.file({description: 'clusterConfig.yaml whose spec.binaries to point at the bucket.'}),
    'repo-endpoint': Flags.string({
      description: 'externalRepoEndpoint to write with --cluster-config (default <endpoint>/<bucket>[/<prefix>]).',
    }),
    'write-credentials': Flags.boolean({
      description: 'With --cluster-config, also write externalRepoUsername/externalRepoPassword (the S3 keys) into it.',
      dependsOn: ['cluster-config'],
    }),
  }

  protected override interruptNote(done: number, of: number): string {
    return `${done} of ${plural(of, 'step')} had finished; every object already uploaded is complete (a multipart upload only appears when all its parts are in). Run the same command again to resume: objects already there with the same sha256 are skipped, and a multipart upload left open is aborted.`
  }

  async run(): Promise<ImportS3Result> {
    await checkBundleKey(this.args.bundle, this.flags['bundle-key'])
    const f = this.flags
    // Loaded here, not at the top: oclif loads every command module to list them, and the AWS SDK
    // would add half a second to every other command's start.
    const [{bucketUrl, checkS3Target}, {importS3}] = await Promise.all([
      import('../../lib/targets/s3/s3-client.js'),
      import('../../lib/importers/s3.js'),
    ])
    const {checkRepoEndpoint, openClusterConfig} = await import('../../lib/importers/cluster-config.js')
    checkS3Target({endpoint: f.endpoint, bucket: f.bucket, insecure: f.insecure, concurrency: f.concurrency})
    const repoEndpoint = f['repo-endpoint'] ?? bucketUrl(f.endpoint, f.bucket, f.prefix)
    if (f['repo-endpoint'] !== undefined) checkRepoEndpoint('--repo-endpoint', f['repo-endpoint'])
    const config = f['cluster-config'] ? await openClusterConfig(f['cluster-config']) : undefined
    const target = await s3TargetOptions(f)
    const r = await importS3(this.args.bundle, {
      ...target,
      createBucket: f['create-bucket'],
      publicRead: f['public-read'],
      concurrency: f.concurrency,
      partSize: f['part-size'] * 1024 * 1024,
      progress: this.progress,
      repoEndpoint,
    })
    const clusterConfig = f['cluster-config']
    if (config && !f['write-credentials'] && r.files.length > 0) {
      // The installer reads without credentials: say so now rather than at its first 403.
      const {anonymousStatus} = await import('../../lib/targets/s3/s3-anonymous.js')
      const probe = `${repoEndpoint}/${r.files[0].path.slice(r.prefix ? r.prefix.length + 1 : 0)}`
      const status = await anonymousStatus(probe, {
        caFiles: f['ca-file'] ? [f['ca-file']] : undefined,
        insecure: f.insecure,
      })
      if (status !== 200) {
        this.progress.warn(
          `an anonymous GET of ${probe} got ${status === undefined ? 'no answer' : `HTTP ${status}`}: an installer pointed at ${repoEndpoint} without credentials cannot read the files; ` +
            'add --public-read (a bucket policy allowing anonymous reads under the prefix) or --write-credentials',
        )
      }
    }
    if (config) {
      await config.point({
        endpoint: repoEndpoint,
        ...(f['write-credentials']
          ? {username: target.credentials.accessKeyId, password: target.credentials.secretAccessKey}
          : {}),
      })
    }
    if (r.baseChecked) this.out(baseCheckedLine(r.baseChecked, `in ${r.bucket}${r.prefix ? `/${r.prefix}` : ''}`))
    this.out(
      `${plural(r.written, 'object')} written (${formatBytes(r.bytesWritten)}), ${r.skipped} already there, in ${r.bucket}${r.prefix ? `/${r.prefix}` : ''}`,
    )
    if (clusterConfig)
      this.out(
        `${clusterConfig}: spec.binaries -> external ${repoEndpoint}${f['write-credentials'] ? ' (with credentials)' : ''}`,
      )
    for (const s of r.osSources) this.out(`${s.path} (for the node):\n${s.text.trimEnd()}`)
    return {
      endpoint: repoEndpoint,
      s3Endpoint: r.s3Endpoint,
      bucket: r.bucket,
      prefix: r.prefix,
      osSources: r.osSources,
      ...fileImportResult(r, clusterConfig),
    }
  }
}
