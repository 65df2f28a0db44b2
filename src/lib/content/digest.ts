/** What a digest is: the `sha256:<hex>` strings every descriptor carries, named and checked. */

import {createHash} from 'node:crypto'

export const SHA256_HEX = /^[a-f0-9]{64}$/
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

/** `sha256:<hex>` of a buffer. */
export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s)
}

/** The hex part of `sha256:<hex>`. */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${digest}`)
  return digest.slice(7)
}
