import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {pushImage, type PushedImage} from '../helpers/images.js'
import {attachReferrers, cosignKeyPair, type CosignKeyPair, type SignedImageReferrers} from '../helpers/referrers.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

/** The manifest bytes a registry serves for a reference, read by skopeo (independent of airlock). */
async function served(ref: string): Promise<Buffer> {
  return (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {encoding: 'buffer', maxBuffer: 16 << 20})).stdout
}

let source: RegistryServer
let key: CosignKeyPair
let image: PushedImage
let attached: SignedImageReferrers

beforeAll(async () => {
  source = await startRegistry()
  key = cosignKeyPair()
  image = await pushImage(source, {repository: 'team/app', tag: '1.0', platforms: ['linux/amd64', 'linux/arm64']})
  attached = await attachReferrers(source, image, key)
})

afterAll(async () => {
  await source?.stop()
})

describe('referrer fixtures', () => {
  it('the registry holds the signature, the SBOM with subject, its fallback tag index and the SBOM signature', async () => {
    const repo = `${source.host}/team/app`
    for (const r of attached.all) {
      expect(sha256(await served(`${repo}@${r.digest}`))).toBe(r.digest)
      if (r.tag) expect(sha256(await served(`${repo}:${r.tag}`))).toBe(r.digest)
    }
    expect(attached.signature.tag).toBe(`sha256-${image.digest.slice(7)}.sig`)
    expect(attached.sbomSignature.tag).toBe(`sha256-${attached.sbom.digest.slice(7)}.sig`)
    const fallback = JSON.parse((await served(`${repo}:sha256-${image.digest.slice(7)}`)).toString())
    expect(fallback.manifests).toEqual([expect.objectContaining({digest: attached.sbom.digest, artifactType: 'application/vnd.cyclonedx+json'})])
    expect(JSON.parse(attached.sbom.manifestBytes.toString()).subject.digest).toBe(image.digest)
  })
})
