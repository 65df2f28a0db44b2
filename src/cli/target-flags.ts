import type {Readable} from 'node:stream'

import {Flags} from '@oclif/core'

import {UsageError} from '../lib/errors.js'
import type {RegistryTargetOptions} from '../lib/targets/registry/registry-sink.js'
import {parseMapRule} from '../lib/targets/registry/registry-target.js'
import {resolveS3Credentials, type S3Credentials} from '../lib/targets/s3/s3-credentials.js'

/** Where the registry password comes from when neither --password nor --password-stdin is given. */
export const PASSWORD_ENV = 'AIRLOCK_PASSWORD'

/**
 * `--username`, `--password` and `--password-stdin`, as every command that
 * logs in to a registry takes them (`what` words whose login it is). The
 * password comes from standard input, else --password, else
 * AIRLOCK_PASSWORD: `loginCredentials` reads them, in one place.
 */
export function loginFlags(what: {username: string; password: string}) {
  return {
    username: Flags.string({
      description: `${what.username} A password comes with it from --password-stdin, --password or ${PASSWORD_ENV}.`,
    }),
    password: Flags.string({
      description: `${what.password} Shown to every local user by ps: prefer --password-stdin or ${PASSWORD_ENV}.`,
      dependsOn: ['username'],
    }),
    'password-stdin': Flags.boolean({
      description: `Read the password (or token) from standard input, the trailing newline removed, as docker login does; not with --password.`,
      // Not oclif's `exclusive`: its message would print --password's value.
      dependsOn: ['username'],
    }),
  }
}

/**
 * The credentials `loginFlags` give: none without --username; else the
 * password from standard input (--password-stdin, one trailing newline
 * removed, as docker login does), else --password, else AIRLOCK_PASSWORD.
 * A username without any password is a usage error.
 */
export async function loginCredentials(
  f: {username?: string; password?: string; 'password-stdin'?: boolean},
  io: {stdin?: Readable; env?: NodeJS.ProcessEnv} = {},
): Promise<{username: string; password: string} | undefined> {
  if (f.username === undefined) return undefined
  if (f['password-stdin']) {
    if (f.password !== undefined) throw new UsageError('--password and --password-stdin are mutually exclusive')
    const chunks: Buffer[] = []
    for await (const c of io.stdin ?? process.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)))
    const password = Buffer.concat(chunks).toString('utf8').replace(/\n$/, '').replace(/\r$/, '')
    if (password === '')
      throw new UsageError('--password-stdin: standard input held no password', {
        suggestions: ['printf %s "$TOKEN" | airlock ... --username USER --password-stdin'],
      })
    return {username: f.username, password}
  }
  if (f.password !== undefined) return {username: f.username, password: f.password}
  const env = (io.env ?? process.env)[PASSWORD_ENV]
  if (env !== undefined && env !== '') return {username: f.username, password: env}
  throw new UsageError(`--username ${f.username} needs a password: --password-stdin, ${PASSWORD_ENV} or --password`)
}

/**
 * The flags that name a target, shared by every command that reads or writes
 * it: `import registry`, `inventory registry` and `mirror` name a registry the
 * same way; `import s3` and `inventory s3` a bucket. One definition each, so
 * an inventory is always taken of the target an import writes.
 */
export const registryTargetFlags = {
  registry: Flags.string({description: 'Target registry, HOST[:PORT].', required: true}),
  namespace: Flags.string({description: 'Path put before every repository, e.g. mirror or team/k8s.'}),
  'keep-registry-host': Flags.boolean({
    description:
      'Keep the source registry host as the first path component (registry/docker.io/library/nginx; a host:port becomes host_port).',
  }),
  map: Flags.string({
    description:
      'FROM=TO: a source repository prefix, host included (quay.io/calico), put at TO under --namespace instead; whole path components, the first matching rule wins; repeatable.',
    multiple: true,
  }),
  'max-path-depth': Flags.integer({
    description:
      'At most N path components under --namespace: the leading ones of a deeper path are joined with - into its first (tools/team/app at 2 -> tools-team/app).',
    min: 1,
  }),
  ...loginFlags({
    username: 'Target registry username (else the Docker config, else anonymous).',
    password: 'Target registry password or token.',
  }),
  'ca-file': Flags.string({description: 'Extra trusted CA (PEM); repeatable.', multiple: true}),
  insecure: Flags.boolean({description: 'Allow plain HTTP and unverified TLS for the target registry.'}),
}

/** `--mirror-config DIR`, as `import registry`, `mirror` and `serve` take it. */
export const mirrorConfigFlag = {
  'mirror-config': Flags.string({
    description:
      'Write what nodes need to pull every image by its original name from where it went: DIR/containerd/certs.d/<source host>/hosts.toml, DIR/registries.conf (podman, CRI-O, skopeo) and DIR/registries.yaml (k3s, RKE2).',
  }),
}

/** The target `registryTargetFlags` name, as the library takes it (a password on standard input read here). */
export async function registryTargetOptions(f: {
  registry: string
  namespace?: string
  'keep-registry-host'?: boolean
  map?: string[]
  'max-path-depth'?: number
  username?: string
  password?: string
  'password-stdin'?: boolean
  'ca-file'?: string[]
  insecure?: boolean
}): Promise<RegistryTargetOptions> {
  return {
    registry: f.registry,
    namespace: f.namespace,
    keepRegistryHost: f['keep-registry-host'],
    map: (f.map ?? []).map((m) => parseMapRule(m)),
    maxPathDepth: f['max-path-depth'],
    credentials: await loginCredentials(f),
    caFiles: f['ca-file'],
    insecure: f.insecure,
  }
}

export const s3TargetFlags = {
  endpoint: Flags.string({description: 'S3 endpoint URL (path-style addressing is used).', required: true}),
  bucket: Flags.string({description: 'Bucket.', required: true}),
  prefix: Flags.string({description: 'Key prefix: objects are <prefix>/<path>.', default: ''}),
  region: Flags.string({description: 'Signing region.', default: 'us-east-1'}),
  'ca-file': Flags.file({description: 'Extra CA (PEM) to trust for the endpoint.', exists: true}),
  insecure: Flags.boolean({description: 'Allow plain HTTP to a non-loopback host and unverified TLS.'}),
  'access-key': Flags.string({description: 'Access key (else AWS_ACCESS_KEY_ID, else ~/.aws/credentials).'}),
  'secret-key': Flags.string({description: 'Secret key (else AWS_SECRET_ACCESS_KEY, else ~/.aws/credentials).'}),
  profile: Flags.string({description: 'Profile in ~/.aws/credentials (else AWS_PROFILE, else default).'}),
}

/** The bucket `s3TargetFlags` name, as the library takes it, the credentials resolved (flags, else environment, else ~/.aws/credentials). */
export async function s3TargetOptions(f: {
  endpoint: string
  bucket: string
  prefix: string
  region: string
  'ca-file'?: string
  insecure: boolean
  'access-key'?: string
  'secret-key'?: string
  profile?: string
}): Promise<{
  endpoint: string
  bucket: string
  prefix: string
  region: string
  caFiles?: string[]
  insecure: boolean
  credentials: S3Credentials
}> {
  return {
    endpoint: f.endpoint,
    bucket: f.bucket,
    prefix: f.prefix,
    region: f.region,
    caFiles: f['ca-file'] ? [f['ca-file']] : undefined,
    insecure: f.insecure,
    credentials: await resolveS3Credentials({
      accessKey: f['access-key'],
      secretKey: f['secret-key'],
      profile: f.profile,
    }),
  }
}
