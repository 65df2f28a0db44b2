import {generateKeyPairSync, type KeyObject, sign} from 'node:crypto'
import {writeFile} from 'node:fs/promises'

import {type Blob, MEDIA, type PushedImage, RegistrySession, sha256} from './images.js'
import {type RegistryServer} from './registry.js'

// Signatures, SBOMs and their signatures, made here the way cosign and OCI 1.1
// clients make them, and pushed with plain registry calls (independent of
// airlock's code), so tests can check that airlock carries them across.

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
export const CYCLONEDX_JSON = 'application/vnd.cyclonedx+json'
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json'

export interface CosignKeyPair {
  privateKey: KeyObject
  /** PEM (SubjectPublicKeyInfo), as `cosign generate-key-pair` writes cosign.pub. */
  publicKeyPem: string
}

/** A fresh ECDSA P-256 key pair, the kind cosign generates. */
export function cosignKeyPair(): CosignKeyPair {
  const {privateKey, publicKey} = generateKeyPairSync('ec', {namedCurve: 'prime256v1'})
  return {privateKey, publicKeyPem: publicKey.export({type: 'spki', format: 'pem'}).toString()}
}

export async function writePublicKey(path: string, key: CosignKeyPair): Promise<string> {
  await writeFile(path, key.publicKeyPem)
  return path
}

/** A manifest (with the blobs it needs) that refers to something: what the tests push and expect back. */
export interface Referrer {
  digest: string
  mediaType: string
  /** The manifest's artifactType, else its config's media type (the OCI rule). */
  artifactType: string
  size: number
  /** The digest it refers to. */
  subject: string
  /** The cosign tag it is pushed under, when it is found by tag. */
  tag?: string
  manifestBytes: Buffer
  blobs: Blob[]
}

const blobOf = (data: Buffer | string, mediaType: string): Blob => {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data)
  return {digest: sha256(b), size: b.length, mediaType, data: b}
}

/** cosign's simple-signing payload for `dockerReference` at `digest`, byte for byte as cosign writes it. */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: {'docker-reference': dockerReference},
        image: {'docker-manifest-digest': digest},
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  )
}

/**
 * A cosign signature manifest (what `cosign sign --key` pushes as
 * `sha256-<hex>.sig`): an OCI manifest whose one layer is the simple-signing
 * payload naming `signs`, with the base64 ECDSA-P256/SHA-256 signature of the
 * payload in its annotation; the config is the empty image's with that layer.
 * `subject` is the digest whose tag it is pushed under (normally `signs`; a
 * test passes another to make a signature that names the wrong image).
 */
export function cosignSignature(
  key: CosignKeyPair,
  opts: {dockerReference: string; signs: string; subject?: string},
): Referrer {
  const subject = opts.subject ?? opts.signs
  const payload = blobOf(simpleSigningPayload(opts.dockerReference, opts.signs), SIMPLE_SIGNING)
  const signature = sign('sha256', payload.data, key.privateKey).toString('base64')
  const config = blobOf(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{created: '0001-01-01T00:00:00Z'}],
      os: '',
      rootfs: {type: 'layers', diff_ids: [payload.digest]},
      config: {},
    }),
    MEDIA.ociConfig,
  )
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: {mediaType: config.mediaType, size: config.size, digest: config.digest},
      layers: [
        {
          mediaType: SIMPLE_SIGNING,
          size: payload.size,
          digest: payload.digest,
          annotations: {[SIGNATURE_ANNOTATION]: signature},
        },
      ],
    }),
  )
  return {
    digest: sha256(manifestBytes),
    mediaType: MEDIA.ociManifest,
    artifactType: MEDIA.ociConfig,
    size: manifestBytes.length,
    subject,
    tag: `sha256-${subject.slice(7)}.sig`,
    manifestBytes,
    blobs: [config, payload],
  }
}

/** An SBOM attached the OCI 1.1 way: an artifact manifest (empty config, artifactType) with `subject`. */
export function sbomArtifact(subject: {digest: string; mediaType: string; size: number}, name = 'fixture'): Referrer {
  const doc = blobOf(
    JSON.stringify({
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      version: 1,
      metadata: {component: {type: 'container', name}},
      components: [],
    }),
    CYCLONEDX_JSON,
  )
  const empty = blobOf('{}', OCI_EMPTY)
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      artifactType: CYCLONEDX_JSON,
      config: {mediaType: OCI_EMPTY, digest: empty.digest, size: empty.size, data: 'e30='},
      layers: [{mediaType: CYCLONEDX_JSON, digest: doc.digest, size: doc.size}],
      subject: {mediaType: subject.mediaType, digest: subject.digest, size: subject.size},
      annotations: {'org.opencontainers.image.created': '2024-01-01T00:00:00Z'},
    }),
  )
  return {
    digest: sha256(manifestBytes),
    mediaType: MEDIA.ociManifest,
    artifactType: CYCLONEDX_JSON,
    size: manifestBytes.length,
    subject: subject.digest,
    manifestBytes,
    blobs: [empty, doc],
  }
}

/** Pushes a referrer's blobs and manifest, by digest, and under its tag when it has one. */
export async function pushReferrer(reg: RegistryServer, repository: string, r: Referrer): Promise<void> {
  const session = new RegistrySession(reg, repository)
  for (const b of r.blobs) await session.pushBlob(b)
  await session.putManifest(r.digest, r.mediaType, r.manifestBytes)
  if (r.tag) await session.putManifest(r.tag, r.mediaType, r.manifestBytes)
}

/**
 * The referrers tag schema's index (`sha256-<hex of subject>`), as a client
 * writes it for a registry without the referrers API: an OCI index of the
 * referrers' descriptors with their artifactType.
 */
export async function pushFallbackIndex(
  reg: RegistryServer,
  repository: string,
  subject: string,
  referrers: Referrer[],
): Promise<{tag: string; digest: string; bytes: Buffer}> {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: referrers.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        artifactType: r.artifactType,
      })),
    }),
  )
  const tag = `sha256-${subject.slice(7)}`
  await new RegistrySession(reg, repository).putManifest(tag, MEDIA.ociIndex, bytes)
  return {tag, digest: sha256(bytes), bytes}
}

export interface SignedImageReferrers {
  /** cosign signature of the image index, under `sha256-<index hex>.sig`. */
  signature: Referrer
  /** SBOM of the image index, with subject, in the fallback tag index. */
  sbom: Referrer
  /** cosign signature of the SBOM, under `sha256-<sbom hex>.sig`. */
  sbomSignature: Referrer
  /** The referrers tag schema index for the image index. */
  fallback: {tag: string; digest: string; bytes: Buffer}
  /** All three referrers. */
  all: Referrer[]
}

/**
 * For one pushed (multi-arch) image: a cosign signature, an SBOM attached
 * with `subject` plus its fallback tag index, and a cosign signature of that
 * SBOM, all signed with `key`.
 */
export async function attachReferrers(
  reg: RegistryServer,
  image: PushedImage,
  key: CosignKeyPair,
): Promise<SignedImageReferrers> {
  const dockerReference = `${new URL(reg.url).host}/${image.repository}`
  const signature = cosignSignature(key, {dockerReference, signs: image.digest})
  const sbom = sbomArtifact(
    {digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length},
    image.repository,
  )
  const sbomSignature = cosignSignature(key, {dockerReference, signs: sbom.digest})
  for (const r of [signature, sbom, sbomSignature]) await pushReferrer(reg, image.repository, r)
  const fallback = await pushFallbackIndex(reg, image.repository, image.digest, [sbom])
  return {signature, sbom, sbomSignature, fallback, all: [signature, sbom, sbomSignature]}
}
