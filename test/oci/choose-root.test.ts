import {describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {chooseRoot, type FetchedRoot, keepsWholeIndex} from '../../src/lib/oci/choose-root.js'

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

/** An index of three platforms, as a registry serves it. */
function upstreamIndex(): FetchedRoot {
  const entry = (architecture: string, n: number) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${String(n).repeat(64)}`,
    size: 500 + n,
    platform: {os: 'linux', architecture},
  })
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [entry('amd64', 1), entry('arm64', 2), entry('s390x', 3)],
    }),
  )
  return {bytes, mediaType: OCI_INDEX, digest: sha256Digest(bytes)}
}

async function choose(ref: {tag?: string; digest?: string}, wanted: string[] | 'all') {
  const warnings: string[] = []
  const chosen = await chooseRoot('host/app', upstreamIndex(), wanted, ref, {
    config: () => Promise.reject(new Error('an index needs no config')),
    warn: (m) => warnings.push(m),
  })
  return {chosen, warnings}
}

describe('which root an image entry copies', () => {
  const pin = upstreamIndex().digest

  it('keeps the whole index only for a reference pinned by digest alone', () => {
    expect(keepsWholeIndex({digest: pin})).toBe(true)
    expect(keepsWholeIndex({tag: '1.0', digest: pin})).toBe(false)
    expect(keepsWholeIndex({tag: '1.0'})).toBe(false)
  })

  it('filters a tag and a tag with a digest alike: the same new index, the upstream digest as its source', async () => {
    const byTag = await choose({tag: '1.0'}, ['linux/amd64', 'linux/arm64'])
    const locked = await choose({tag: '1.0', digest: pin}, ['linux/amd64', 'linux/arm64'])
    expect(locked.chosen).toEqual(byTag.chosen)
    expect(locked.chosen.platforms).toEqual(['linux/amd64', 'linux/arm64'])
    expect(locked.chosen.sourceDigest).toBe(pin)
    expect(locked.chosen.root.digest).not.toBe(pin)
    expect(sha256Digest(locked.chosen.root.bytes)).toBe(locked.chosen.root.digest)
    const kept = JSON.parse(locked.chosen.root.bytes.toString('utf8')) as {
      manifests: {platform: {architecture: string}}[]
    }
    expect(kept.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64'])
    expect(locked.warnings).toEqual([])
  })

  it('carries every platform of a digest-only reference, with a note naming the digest and how to filter', async () => {
    const {chosen, warnings} = await choose({digest: pin}, ['linux/amd64'])
    expect(chosen.root).toEqual(upstreamIndex())
    expect(chosen.sourceDigest).toBeUndefined()
    expect(chosen.platforms).toEqual(['linux/amd64', 'linux/arm64', 'linux/s390x'])
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toContain(`pinned to an index digest with no tag; carrying all 3 platforms`)
    expect(warnings[0]).toContain('host/repo:tag@sha256:')
  })

  it('keeps the upstream index unchanged when the filter keeps every platform, pinned or not', async () => {
    for (const ref of [{tag: '1.0', digest: pin}, {digest: pin}, {tag: '1.0'}]) {
      const {chosen, warnings} = await choose(ref, 'all')
      expect(chosen.root.digest).toBe(pin)
      expect(chosen.sourceDigest).toBeUndefined()
      expect(warnings).toEqual([])
    }
  })
})
