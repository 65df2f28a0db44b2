import {createPublicKey, type KeyObject, verify} from 'node:crypto'
import {readFile} from 'node:fs/promises'

import type {ImageManifest} from '../content/descriptor.js'
import {digestHex, isDigest} from '../content/digest.js'
import {UsageError} from '../errors.js'

/**
 * cosign's key-based signatures, as cosign stores them: a manifest tagged
 * `sha256-<hex of the signed digest>.sig` in the image's repository, one
 * layer per signature. Each layer is a "simple signing" JSON payload that
 * names the signed manifest digest, and carries the base64 ECDSA (ASN.1 DER,
 * SHA-256) signature of exactly those payload bytes in an annotation.
 */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'

/** The tags cosign attaches to a digest: signatures, attestations, SBOMs. */
export const COSIGN_TAG_SUFFIXES = ['sig', 'att', 'sbom'] as const
export type CosignTagSuffix = (typeof COSIGN_TAG_SUFFIXES)[number]

/** `sha256-<hex>.sig` (or `.att`, `.sbom`) for a digest. */
export function cosignTag(digest: string, suffix: CosignTagSuffix): string {
  return `sha256-${digestHex(digest)}.${suffix}`
}

/** The digest and kind a cosign tag names, or undefined when `tag` is not one. */
export function parseCosignTag(tag: string): {digest: string; suffix: CosignTagSuffix} | undefined {
  const m = /^sha256-([a-f0-9]{64})\.(sig|att|sbom)$/.exec(tag)
  return m ? {digest: `sha256:${m[1]}`, suffix: m[2] as CosignTagSuffix} : undefined
}

/** A PEM public key file, read and parsed; a usage error naming the file (with `hint`) when it is not one. */
export async function readPemPublicKey(file: string, hint: string): Promise<KeyObject> {
  let pem: Buffer
  try {
    pem = await readFile(file)
  } catch (err) {
    throw new UsageError(`cannot read the key ${file}: ${(err as Error).message}`)
  }
  try {
    return createPublicKey({key: pem, format: 'pem'})
  } catch (err) {
    throw new UsageError(`${file} is not a PEM public key: ${(err as Error).message}`, {suggestions: [hint]})
  }
}

const COSIGN_KEY_HINT = 'pass the cosign.pub that cosign generate-key-pair wrote'

/** A PEM public key file (`cosign.pub`, as `cosign generate-key-pair` writes it); a usage error when it is not one. */
export async function readPublicKey(file: string): Promise<KeyObject> {
  const key = await readPemPublicKey(file, COSIGN_KEY_HINT)
  if (key.asymmetricKeyType !== 'ec')
    throw new UsageError(`${file} is not a PEM public key: a ${key.asymmetricKeyType} key, cosign keys are ECDSA`, {
      suggestions: [COSIGN_KEY_HINT],
    })
  return key
}

/** The simple-signing layers of a manifest: one per signature. */
export function simpleSigningLayers(manifest: Pick<ImageManifest, 'layers'>): ImageManifest['layers'] {
  return (Array.isArray(manifest.layers) ? manifest.layers : []).filter(
    (l) => l?.mediaType === SIMPLE_SIGNING_MEDIA_TYPE,
  )
}

export type SimpleSignatureCheck =
  /** The signature verifies with the key; `names` is the digest its payload signs. */
  | {verified: true; names: string}
  /** It does not verify, or its payload names no digest: `why` says which. */
  | {verified: false; why: string}

/**
 * One cosign signature checked offline: the ECDSA signature over the payload
 * bytes with `key`, then the payload's `critical.image.docker-manifest-digest`.
 * Whether that digest is the right one is the caller's question.
 */
export function checkSimpleSignature(
  payload: Buffer,
  base64Signature: string | undefined,
  key: KeyObject,
): SimpleSignatureCheck {
  if (!base64Signature) return {verified: false, why: `no ${COSIGN_SIGNATURE_ANNOTATION} annotation`}
  let ok: boolean
  try {
    ok = verify('sha256', payload, key, Buffer.from(base64Signature, 'base64'))
  } catch (err) {
    return {verified: false, why: `the signature cannot be checked with this key (${(err as Error).message})`}
  }
  if (!ok) return {verified: false, why: 'the signature does not verify with this key'}
  let names: unknown
  try {
    names = (JSON.parse(payload.toString('utf8')) as {critical?: {image?: Record<string, unknown>}}).critical?.image?.[
      'docker-manifest-digest'
    ]
  } catch {
    return {verified: false, why: 'the signed payload is not JSON'}
  }
  if (typeof names !== 'string' || !isDigest(names))
    return {verified: false, why: 'the signed payload names no sha256 manifest digest'}
  return {verified: true, names}
}
