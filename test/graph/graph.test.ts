import {describe, expect, it} from 'vitest'

import type {Descriptor} from '../../src/lib/content/descriptor.js'
import {sha256Digest} from '../../src/lib/content/digest.js'
import {MediaType} from '../../src/lib/content/media-types.js'
import {manifestGaps, ManifestParseError, parseLayoutIndex, parseManifestJson} from '../../src/lib/graph/parse.js'
import {successors} from '../../src/lib/graph/successors.js'
import {walkGraph} from '../../src/lib/graph/walk.js'

const json = (o: unknown) => Buffer.from(JSON.stringify(o))
const blob = (b: Buffer, mediaType: string): Descriptor => ({mediaType, digest: sha256Digest(b), size: b.length})

describe('parseManifestJson', () => {
  it('types a document by its own media type, else the declared one, else its shape', () => {
    expect(parseManifestJson(json({schemaVersion: 2, manifests: []})).kind).toBe('index')
    expect(parseManifestJson(json({schemaVersion: 2, config: {}, layers: []})).kind).toBe('manifest')
    expect(parseManifestJson(json({schemaVersion: 2}), MediaType.dockerList).kind).toBe('index')
    expect(parseManifestJson(json({schemaVersion: 2, mediaType: MediaType.ociManifest}), MediaType.ociIndex).kind).toBe(
      'manifest',
    )
  })

  it('says why bytes are not a manifest', () => {
    const reason = (b: Buffer, mt?: string) => {
      try {
        parseManifestJson(b, mt)
        return 'parsed'
      } catch (err) {
        expect(err).toBeInstanceOf(ManifestParseError)
        return (err as ManifestParseError).reason
      }
    }
    expect(reason(Buffer.from('<html>'))).toBe('json')
    expect(reason(json({schemaVersion: 2}), 'application/octet-stream')).toBe('kind')
    expect(reason(json([1, 2]))).toBe('kind')
  })

  it('lists the fields a document lacks', () => {
    expect(manifestGaps(parseManifestJson(json({}), MediaType.ociManifest))).toEqual(['config', 'layers'])
    expect(manifestGaps(parseManifestJson(json({}), MediaType.ociIndex))).toEqual(['manifests'])
  })

  it('parses index.json and refuses one without a manifests list', () => {
    expect(parseLayoutIndex(json({schemaVersion: 2, manifests: []})).manifests).toEqual([])
    expect(() => parseLayoutIndex(json({schemaVersion: 2}))).toThrow('no manifests array')
    expect(() => parseLayoutIndex(Buffer.from('{'))).toThrow(ManifestParseError)
  })
})

describe('successors', () => {
  const config = blob(Buffer.from('{}'), MediaType.ociConfig)
  const layer = blob(Buffer.from('layer'), 'application/vnd.oci.image.layer.v1.tar+gzip')
  const foreign = {
    ...blob(Buffer.from('win'), 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'),
    urls: ['https://example.com/l'],
  }
  const subject = blob(Buffer.from('{"s":1}'), MediaType.ociManifest)

  it('names config, layers and subject; a foreign layer with urls is optional', () => {
    const edges = successors(parseManifestJson(json({schemaVersion: 2, config, layers: [layer, foreign], subject})))
    expect(edges.map((e) => [e.role, e.index, e.optional, e.desc.digest])).toEqual([
      ['config', 0, false, config.digest],
      ['layer', 0, false, layer.digest],
      ['layer', 1, true, foreign.digest],
      ['subject', 0, false, subject.digest],
    ])
  })

  it("names an index's manifests and its subject", () => {
    const edges = successors(parseManifestJson(json({schemaVersion: 2, manifests: [subject], subject})))
    expect(edges.map((e) => e.role)).toEqual(['manifest', 'subject'])
  })
})

describe('walkGraph', () => {
  it('reads manifests, follows a referrer to its subject, and visits blobs without reading them', async () => {
    const store = new Map<string, Buffer>()
    const put = (b: Buffer, mt: string) => {
      const d = blob(b, mt)
      store.set(d.digest, b)
      return d
    }
    const config = put(Buffer.from('{}'), MediaType.ociConfig)
    const layer = put(Buffer.from('layer'), 'application/vnd.oci.image.layer.v1.tar')
    const image = put(
      json({schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer]}),
      MediaType.ociManifest,
    )
    const sig = put(
      json({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        artifactType: 'application/x-sig',
        config,
        layers: [],
        subject: image,
      }),
      MediaType.ociManifest,
    )
    const seen: string[] = []
    const read: string[] = []
    await walkGraph(sig, 'sig', {
      visit: (_d, at) => {
        seen.push(at)
        return true
      },
      bytes: (d) => {
        read.push(d.digest)
        return store.get(d.digest)
      },
      invalid: () => {
        throw new Error('unexpected')
      },
      label: (at, e) => `${at} ${e.role}`,
    })
    expect(seen).toEqual(['sig', 'sig config', 'sig subject', 'sig subject config', 'sig subject layer'])
    expect(read).toEqual([sig.digest, image.digest])
  })
})
