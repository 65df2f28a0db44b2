import {createHash} from 'node:crypto'

import type {BundleLock, LockImage, LockReferrer} from '../../bundle-json.js'
import {digestHex} from '../../content/digest.js'
import {parseReference} from '../../oci/reference.js'

/**
 * A bundle's bill of materials as CycloneDX 1.5 JSON, for approval before the
 * bundle crosses the gap: every image a `container` component with the purl
 * the contract gives (`pkg:oci/<name>@sha256%3A<hex>?repository_url=<host>/<path>&tag=<tag>`),
 * its referrers (signatures, SBOMs) nested under it with their digests and
 * subjects, and every file with its URL and SHA-256. The document is plain
 * JSON built here (the schema is small and the contract fixes the purl's
 * exact spelling); the tests validate it against the CycloneDX 1.5 schema.
 * The same bundle.json always gives the same document: no timestamp, and the
 * serial number is derived from bundle.json's sha256.
 */
export interface CycloneDxBom {
  bomFormat: 'CycloneDX'
  specVersion: '1.5'
  serialNumber: string
  version: 1
  metadata: {tools: {components: BomComponent[]}; component: BomComponent}
  components: BomComponent[]
}

export interface BomComponent {
  type: 'application' | 'container' | 'file' | 'data' | 'library'
  'bom-ref'?: string
  name: string
  version?: string
  purl?: string
  hashes?: {alg: 'SHA-256'; content: string}[]
  externalReferences?: {type: 'distribution'; url: string}[]
  properties?: {name: string; value: string}[]
  components?: BomComponent[]
}

export function bundleBom(lock: BundleLock, lockBytes: Buffer, tool: {name: string; version: string}): CycloneDxBom {
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${uuidFromHash(lockBytes)}`,
    version: 1,
    metadata: {
      tools: {components: [{type: 'application', name: tool.name, version: tool.version}]},
      component: {
        type: 'data',
        'bom-ref': 'bundle',
        name: lock.name,
        ...(lock.version ? {version: lock.version} : {}),
        hashes: [{alg: 'SHA-256', content: createHash('sha256').update(lockBytes).digest('hex')}],
        properties: [{name: 'airlock:file', value: 'bundle.json'}],
      },
    },
    components: [...lock.images.map(imageComponent), ...lock.files.map(fileComponent)],
  }
}

/** `pkg:oci/<last path segment>@sha256%3A<hex>?repository_url=<host>/<path>[&tag=<tag>]` (qualifiers sorted, as purl wants). */
export function ociPurl(ref: string, digest: string, tag?: string): string {
  const r = parseReference(ref)
  const name = r.repository.split('/').pop()!
  const q = [`repository_url=${r.registry}/${r.repository}`, ...(tag ? [`tag=${tag}`] : [])]
  return `pkg:oci/${name}@sha256%3A${digestHex(digest)}?${q.join('&')}`
}

function imageComponent(img: LockImage): BomComponent {
  const r = parseReference(img.ref)
  const properties = [
    {name: 'airlock:ref', value: img.ref},
    {name: 'airlock:mediaType', value: img.mediaType},
    ...img.platforms.map((p) => ({name: 'airlock:platform', value: p})),
    {name: 'airlock:size', value: String(img.size)},
    ...(img.sourceDigest ? [{name: 'airlock:sourceDigest', value: img.sourceDigest}] : []),
  ]
  const referrers = img.referrers ?? []
  return {
    type: 'container',
    'bom-ref': img.ref,
    name: `${r.registry}/${r.repository}`,
    version: r.tag ?? img.digest,
    purl: ociPurl(img.ref, img.digest, r.tag),
    hashes: [{alg: 'SHA-256', content: digestHex(img.digest)}],
    properties,
    ...(referrers.length > 0 ? {components: referrers.map((x) => referrerComponent(img.ref, x))} : {}),
  }
}

function referrerComponent(ref: string, r: LockReferrer): BomComponent {
  return {
    type: 'file',
    'bom-ref': `${ref}#${r.digest}`,
    name: r.artifactType,
    version: r.digest,
    purl: ociPurl(ref, r.digest, r.tag),
    hashes: [{alg: 'SHA-256', content: digestHex(r.digest)}],
    properties: [
      {name: 'airlock:subject', value: r.subject},
      {name: 'airlock:mediaType', value: r.mediaType},
      {name: 'airlock:artifactType', value: r.artifactType},
      {name: 'airlock:size', value: String(r.size)},
      ...(r.tag ? [{name: 'airlock:tag', value: r.tag}] : []),
    ],
  }
}

function fileComponent(f: BundleLock['files'][number]): BomComponent {
  // An OS package is named as its index names it; the vendor (a purl's namespace) is not known, so no purl is guessed.
  return {
    type: f.os ? 'library' : 'file',
    'bom-ref': `${f.kind === 'binary' ? 'files' : 'packages'}/${f.path}`,
    name: f.os ? f.os.name : f.path,
    ...(f.os ? {version: f.os.version} : {}),
    hashes: [{alg: 'SHA-256', content: f.sha256}],
    ...(f.url ? {externalReferences: [{type: 'distribution' as const, url: f.url}]} : {}),
    properties: [
      {name: 'airlock:kind', value: f.kind},
      {name: 'airlock:size', value: String(f.size)},
      ...(f.os
        ? [
            {name: 'airlock:path', value: f.path},
            {name: 'airlock:architecture', value: f.os.architecture},
          ]
        : []),
    ],
  }
}

/** A version-5-shaped UUID from a sha256, so the same bundle.json gives the same serial number. */
function uuidFromHash(bytes: Buffer): string {
  const h = createHash('sha256').update('airlock-bom:').update(bytes).digest()
  h[6] = (h[6] & 0x0f) | 0x50
  h[8] = (h[8] & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
}
