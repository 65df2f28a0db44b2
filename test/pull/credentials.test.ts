import {describe, expect, it} from 'vitest'

import {UsageError} from '../../src/lib/errors.js'
import type {ImageEntry, Manifest} from '../../src/lib/manifest/types.js'
import {parseReference} from '../../src/lib/oci/reference.js'
import {pull} from '../../src/lib/pull/pull.js'
import {silentProgress} from '../../src/lib/ui/progress.js'
import {makeTempDir} from '../helpers/tmp.js'

function image(name: string): ImageEntry {
  return {name, ref: parseReference(name), platforms: ['linux/amd64'], pos: {line: 1, column: 1}}
}

function manifest(images: string[], registries: string[] = []): Manifest {
  return {
    file: 'm.yaml',
    dir: '.',
    name: 'm',
    platforms: ['linux/amd64'],
    registries: registries.map((host) => ({host, insecure: false})),
    images: images.map(image),
    binaries: [],
    packages: [],
  }
}

// --username/--password must never reach a registry they are not for.
describe('pull credentials', () => {
  it('refuses flag credentials when the manifest pulls from several registries and names none', async () => {
    const store = await makeTempDir('airlock-creds-')
    const err = await pull(manifest(['registry.example/a:1', 'docker.io/library/nginx:1']), {
      store,
      concurrency: 1,
      progress: silentProgress,
      username: 'u',
      password: 'secret-pw',
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as Error).message).toContain('several registries (registry.example, docker.io)')
    expect((err as Error).message).not.toContain('secret-pw')
  })

  it('refuses them when spec.registries names more than one host', async () => {
    const store = await makeTempDir('airlock-creds-')
    const err = await pull(manifest(['registry.example/a:1'], ['registry.example', 'other.example']), {
      store,
      concurrency: 1,
      progress: silentProgress,
      username: 'u',
      password: 'p',
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
  })
})
