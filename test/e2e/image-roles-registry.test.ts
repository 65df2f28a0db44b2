import {afterAll, beforeAll} from 'vitest'

import {RegistryClient} from '../../src/lib/registry/client.js'
import {RegistryPusher} from '../../src/lib/registry/push.js'
import {RegistrySource} from '../../src/lib/registry/source.js'
import {PushRun, RegistrySink} from '../../src/lib/targets/registry/registry-sink.js'
import {imageSinkContract, imageSourceContract, putSmallImage} from '../helpers/image-role-contracts.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'

// The image role suites (test/helpers/image-role-contracts.ts) held by a repository of the real
// distribution registry, as a sink (RegistrySink over PushRun) and as a source (RegistrySource).

let reg: RegistryServer
let repos = 0

beforeAll(async () => {
  reg = await startRegistry()
})
afterAll(async () => {
  await reg?.stop()
})

function place(): {client: RegistryClient; sink: RegistrySink; repository: string} {
  const client = new RegistryClient({registry: reg.host, dockerConfig: false})
  const repository = `contract/repo-${++repos}`
  return {client, repository, sink: new RegistrySink(new PushRun(new RegistryPusher(client)), repository)}
}

async function readAll(client: RegistryClient, repository: string, digest: string): Promise<Buffer | undefined> {
  try {
    const {stream} = await client.blobOpener(repository, digest)(0)
    const chunks: Buffer[] = []
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c)
    return Buffer.concat(chunks)
  } catch {
    return undefined
  }
}

imageSinkContract('RegistrySink', async () => {
  const {client, sink, repository} = place()
  return {
    sink,
    reference: '1.0',
    read: async (digest) =>
      (await readAll(client, repository, digest)) ??
      (await client
        .getManifest(repository, digest)
        .then((m) => m.bytes)
        .catch(() => undefined)),
    resolve: async (tag) => {
      const m = await client.getManifest(repository, tag).catch(() => undefined)
      return m && {mediaType: m.mediaType, digest: m.digest, size: m.bytes.length}
    },
  }
})

imageSourceContract('RegistrySource', async () => {
  const {client, sink, repository} = place()
  const image = await putSmallImage(sink)
  return {source: new RegistrySource(client, repository), image}
})
