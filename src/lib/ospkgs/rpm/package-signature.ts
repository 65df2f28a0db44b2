/**
 * The OpenPGP check of one `.rpm` against the entry's `gpgKey`, as
 * `rpm -K` and dnf's gpgcheck=1 do it, before the file becomes visible.
 *
 * What covers what: rpmsign (rpm 4.x, and Debian's) writes a v4 header-only
 * signature, RPMSIGTAG_RSA (268) for RSA keys and RPMSIGTAG_DSA (267) for
 * DSA and EdDSA keys; rpm 6 adds RPMSIGTAG_OPENPGP (278), a list of base64
 * signatures over the same bytes. They sign the main header exactly as it
 * is in the file (magic to end of store). The main header carries
 * RPMTAG_PAYLOADDIGEST (5092), the digest of the compressed payload, so a
 * verified signature and a matching payload digest cover every byte that
 * gets installed. The lead and the signature header are covered by
 * nothing but the repository's checksum of the whole file, which the
 * download checks anyway; they hold no content rpm installs. A package from
 * before rpm 4.14 has no payload digest: its payload is then covered by the
 * repository checksum alone, the same trust dnf gives it. A package with
 * only the legacy header+payload signature (v3, tags 1002/1005) is refused:
 * every rpm since 4.1 writes a header signature.
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'

import type {Key, Signature} from 'openpgp'

import {SignatureError} from '../../errors.js'
import {parseLayout, type RpmLayout, TAG} from './header.js'

type OpenPgp = typeof import('openpgp')
let lib: Promise<OpenPgp> | undefined
// Loaded on use, as ../openpgp.ts does: only pulls with rpm entries pay for it.
const openpgp = (): Promise<OpenPgp> => (lib ??= import('openpgp'))

export interface RpmSignatureResult {
  /** `name-version-release.arch` from the signed header. */
  nevra: string
  /** Ids of the keys whose signatures verified (16 hex digits). */
  keyIds: string[]
}

const DIGESTS: Record<number, string> = {2: 'sha1', 8: 'sha256', 9: 'sha384', 10: 'sha512', 11: 'sha224'}

function describe(layout: RpmLayout): string {
  const h = layout.header
  return `${h.string(TAG.NAME)}-${h.string(TAG.VERSION)}-${h.string(TAG.RELEASE)}.${h.string(TAG.ARCH)}`
}

/** The header signatures the package carries, as OpenPGP signature packets. */
function headerSignatures(layout: RpmLayout): Uint8Array[] {
  const sigs: Uint8Array[] = []
  for (const b64 of layout.signature.strings(TAG.SIG_OPENPGP) ?? []) sigs.push(Buffer.from(b64, 'base64'))
  for (const tag of [TAG.SIG_RSA, TAG.SIG_DSA]) {
    const bin = layout.signature.bin(tag)
    if (bin) sigs.push(bin)
  }
  return sigs
}

async function verifyHeader(layout: RpmLayout, keys: Key[], what: string): Promise<string[]> {
  const nevra = describe(layout)
  const sigs = headerSignatures(layout)
  if (sigs.length === 0) {
    const legacy = layout.signature.bin(TAG.SIG_PGP) ?? layout.signature.bin(TAG.SIG_GPG)
    throw new SignatureError(
      `${what} (${nevra})`,
      legacy
        ? 'it has only a legacy header+payload signature; a header signature is required'
        : 'the package is not signed',
    )
  }
  const pgp = await openpgp()
  const message = await pgp.createMessage({binary: layout.header.bytes})
  const verified: string[] = []
  const unknown: string[] = []
  for (const binarySignature of sigs) {
    let signature: Signature
    try {
      signature = await pgp.readSignature({binarySignature})
    } catch (e) {
      throw new SignatureError(`${what} (${nevra})`, `unreadable signature: ${(e as Error).message}`)
    }
    const ids = signature.getSigningKeyIDs().map((k) => k.toHex())
    const known = keys.some((k) => k.getKeys().some((sub) => ids.includes(sub.getKeyID().toHex())))
    if (!known) {
      unknown.push(...ids)
      continue
    }
    const result = await pgp.verify({message, signature, verificationKeys: keys, format: 'binary'})
    for (const s of result.signatures) {
      try {
        await s.verified
        verified.push(s.keyID.toHex())
      } catch (e) {
        // A signature by one of our keys that does not verify: the header was changed after signing.
        throw new SignatureError(
          `${what} (${nevra})`,
          `the signature by key ${s.keyID.toHex()} does not verify: ${(e as Error).message}`,
        )
      }
    }
  }
  if (verified.length === 0) {
    throw new SignatureError(
      `${what} (${nevra})`,
      `signed by key ${[...new Set(unknown)].join(', ')}, which gpgKey does not hold`,
    )
  }
  return verified
}

/**
 * Check one downloaded `.rpm`: a header signature that verifies with `keys`
 * and, where the header has one, the payload digest. Throws
 * SignatureError (an IntegrityError) naming the package and what failed.
 */
export async function verifyRpmFile(file: string, keys: Key[], what = file): Promise<RpmSignatureResult> {
  let head: Buffer = Buffer.alloc(0)
  let layout: RpmLayout | undefined
  let payload: ReturnType<typeof createHash> | undefined
  let want: string | undefined
  for await (const chunk of createReadStream(file, {highWaterMark: 256 * 1024}) as AsyncIterable<Buffer>) {
    if (layout) {
      payload?.update(chunk)
      continue
    }
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
    try {
      layout = parseLayout(head, what)
    } catch (e) {
      throw new SignatureError(what, (e as Error).message.replace(`${what}: `, ''))
    }
    if (!layout) continue
    const algo = layout.header.int32(TAG.PAYLOADDIGESTALGO) ?? 8
    want = layout.header.strings(TAG.PAYLOADDIGEST)?.[0]
    if (want !== undefined) {
      const name = DIGESTS[algo]
      if (!name) throw new SignatureError(what, `payload digest algorithm ${algo} not supported`)
      payload = createHash(name)
      payload.update(head.subarray(layout.payloadOffset))
    }
    head = Buffer.alloc(0)
  }
  if (!layout) throw new SignatureError(what, 'not an rpm package (the file ends inside its headers)')
  const keyIds = await verifyHeader(layout, keys, what)
  if (payload && want !== undefined) {
    const got = payload.digest('hex')
    if (got !== want.toLowerCase()) {
      throw new SignatureError(
        `${what} (${describe(layout)})`,
        `payload digest mismatch: the signed header says ${want}, the file has ${got}`,
      )
    }
  }
  return {nevra: describe(layout), keyIds}
}
