import {Flags} from '@oclif/core'

import type {RegistryTargetOptions} from './importers/registry-sink.js'
import {parseMapRule} from './importers/registry-target.js'
import {resolveS3Credentials, type S3Credentials} from './importers/s3-credentials.js'

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
    description: 'Keep the source registry host as the first path component (registry/docker.io/library/nginx; a host:port becomes host_port).',
  }),
  map: Flags.string({
    description: 'FROM=TO: a source repository prefix, host included (quay.io/calico), put at TO under --namespace instead; whole path components, the first matching rule wins; repeatable.',
    multiple: true,
  }),
  'max-path-depth': Flags.integer({
    description: 'At most N path components under --namespace: the leading ones of a deeper path are joined with - into its first (tools/team/app at 2 -> tools-team/app).',
    min: 1,
  }),
  username: Flags.string({description: 'Target registry username (else the Docker config, else anonymous).', dependsOn: ['password']}),
  password: Flags.string({description: 'Target registry password or token.', dependsOn: ['username']}),
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

/** The target `registryTargetFlags` name, as the library takes it. */
export function registryTargetOptions(f: {
  registry: string
  namespace?: string
  'keep-registry-host'?: boolean
  map?: string[]
  'max-path-depth'?: number
  username?: string
  password?: string
  'ca-file'?: string[]
  insecure?: boolean
}): RegistryTargetOptions {
  return {
    registry: f.registry,
    namespace: f.namespace,
    keepRegistryHost: f['keep-registry-host'],
    map: (f.map ?? []).map((m) => parseMapRule(m)),
    maxPathDepth: f['max-path-depth'],
    credentials: f.username === undefined ? undefined : {username: f.username, password: f.password},
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
}): Promise<{endpoint: string; bucket: string; prefix: string; region: string; caFile?: string; insecure: boolean; credentials: S3Credentials}> {
  return {
    endpoint: f.endpoint,
    bucket: f.bucket,
    prefix: f.prefix,
    region: f.region,
    caFile: f['ca-file'],
    insecure: f.insecure,
    credentials: await resolveS3Credentials({accessKey: f['access-key'], secretKey: f['secret-key'], profile: f.profile}),
  }
}
