import type {KeyObject} from 'node:crypto'

import type {BundleLock} from '../../bundle-json.js'
import type {ImageManifest} from '../../content/descriptor.js'
import {checkSimpleSignature, COSIGN_SIGNATURE_ANNOTATION, simpleSigningLayers} from '../../oci/cosign.js'
import {shortDigest} from '../../ui/format.js'

export type SignatureStatus = 'signed' | 'unsigned' | 'bad'

/** One image's verdict, as `verify --key --json` lists it. */
export interface ImageSignature {
  ref: string
  digest: string
  status: SignatureStatus
}

export interface SignatureReport {
  signatures: ImageSignature[]
  /** Why each `bad` image is bad, one line per signature that failed; verify adds them to its problems. */
  problems: string[]
}

/**
 * cosign key-based signatures of every image of a bundle, checked offline
 * with one public key. The signatures are the image's referrers whose
 * subject is the image's digest (or its source digest, when a platform filter
 * rewrote the index: that is the digest the publisher signed) and whose
 * manifest has simple-signing layers. `blob` returns the verified bytes of a
 * manifest or payload in the bundle, or undefined when it is not there.
 *
 * An image is `bad` when any signature made with this key names another
 * digest (a signature copied from another image), or when it has signatures
 * and none verifies; else `signed` when one verifies and names the image;
 * else `unsigned`. Signatures by other keys beside a good one are not an
 * error: an image may carry several parties' signatures.
 */
export function checkImageSignatures(
  lock: BundleLock,
  blob: (digest: string) => Buffer | undefined,
  key: KeyObject,
): SignatureReport {
  const signatures: ImageSignature[] = []
  const problems: string[] = []
  for (const img of lock.images) {
    const own = new Set([img.digest, ...(img.sourceDigest ? [img.sourceDigest] : [])])
    let good = 0
    const failed: string[] = []
    const foreign: string[] = []
    let seen = 0
    for (const r of img.referrers ?? []) {
      if (!own.has(r.subject)) continue
      const bytes = blob(r.digest)
      let manifest: ImageManifest | undefined
      try {
        manifest = bytes ? (JSON.parse(bytes.toString('utf8')) as ImageManifest) : undefined
      } catch {
        manifest = undefined
      }
      if (!manifest) continue
      for (const layer of simpleSigningLayers(manifest)) {
        seen++
        const at = `signature ${shortDigest(r.digest)}${r.tag ? ` (${r.tag})` : ''}`
        const payload = blob(layer.digest)
        if (!payload) {
          failed.push(`${at}: its payload ${layer.digest} is not in the bundle`)
          continue
        }
        const check = checkSimpleSignature(payload, layer.annotations?.[COSIGN_SIGNATURE_ANNOTATION], key)
        if (!check.verified) failed.push(`${at}: ${check.why}`)
        else if (own.has(check.names)) good++
        else foreign.push(`${at}: verifies, but signs ${check.names}, not this image`)
      }
    }
    const status: SignatureStatus = foreign.length > 0 ? 'bad' : good > 0 ? 'signed' : seen > 0 ? 'bad' : 'unsigned'
    if (status === 'bad') for (const why of [...foreign, ...failed]) problems.push(`${img.ref}: ${why}`)
    signatures.push({ref: img.ref, digest: img.digest, status})
  }
  return {signatures, problems}
}
