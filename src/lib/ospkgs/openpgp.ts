/**
 * OpenPGP for signed repository metadata, through the `openpgp` library
 * (the maintained pure-JS implementation; runs in the standalone executable,
 * needs no gpg on the bastion). Loaded on use: only pulls with osPackages
 * pay for it.
 */
import {readFile} from 'node:fs/promises'

import type {Key} from 'openpgp'

import {FailureError, SignatureError} from '../errors.js'

type OpenPgp = typeof import('openpgp')
let lib: Promise<OpenPgp> | undefined
const openpgp = (): Promise<OpenPgp> => (lib ??= import('openpgp'))

/** The public keys of a file, binary (a `.gpg` keyring) or armored; FailureError naming the file when there are none. */
export async function readPublicKeys(file: string, what: string): Promise<Key[]> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new FailureError(
      `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    )
  }
  const pgp = await openpgp()
  try {
    const armored = bytes.subarray(0, 64).toString('latin1').includes('-----BEGIN PGP')
    // An armored file may hold several blocks one after another (readKeys reads only the first).
    const blocks = armored
      ? (bytes
          .toString('utf8')
          .match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g) ?? [])
      : []
    const keys = armored
      ? (await Promise.all(blocks.map((armoredKeys) => pgp.readKeys({armoredKeys})))).flat()
      : await pgp.readKeys({binaryKeys: bytes})
    if (keys.length === 0) throw new Error('no key in it')
    return keys
  } catch (err) {
    throw new FailureError(`${what}: ${file} is not an OpenPGP public key file: ${(err as Error).message}`)
  }
}

/** The keys as a node reads them: binary (apt's signed-by) or armored (rpm's gpgkey). */
export async function writeKeys(keys: Key[], armored: boolean): Promise<Buffer> {
  if (armored) {
    const pgp = await openpgp()
    const packets = new pgp.PacketList()
    for (const k of keys) packets.push(...k.toPacketList())
    return Buffer.from(pgp.armor(pgp.enums.armor.publicKey, packets.write()), 'utf8')
  }
  return Buffer.concat(keys.map((k) => Buffer.from(k.toPublic().write())))
}

/** The signed text of a clear-signed document (InRelease), once a signature by one of `keys` verifies; else SignatureError. */
export async function verifyClearSigned(text: string, keys: Key[], what: string): Promise<string> {
  const pgp = await openpgp()
  let message
  try {
    message = await pgp.readCleartextMessage({cleartextMessage: text})
  } catch (err) {
    throw new SignatureError(what, `not a clear-signed OpenPGP message (${(err as Error).message})`)
  }
  await checkSignatures(await pgp.verify({message, verificationKeys: keys}), keys, what)
  return message.getText()
}

/** A detached signature (Release.gpg, repomd.xml.asc, binary or armored) over `data`; SignatureError unless one by `keys` verifies. */
export async function verifyDetached(
  data: Uint8Array,
  signature: Uint8Array,
  keys: Key[],
  what: string,
): Promise<void> {
  const pgp = await openpgp()
  let sig
  try {
    const text = Buffer.from(signature.subarray(0, 64)).toString('latin1')
    sig = text.includes('-----BEGIN PGP')
      ? await pgp.readSignature({armoredSignature: Buffer.from(signature).toString('utf8')})
      : await pgp.readSignature({binarySignature: signature})
  } catch (err) {
    throw new SignatureError(what, `the signature is not an OpenPGP signature (${(err as Error).message})`)
  }
  const message = await pgp.createMessage({binary: data})
  await checkSignatures(await pgp.verify({message, signature: sig, verificationKeys: keys}), keys, what)
}

/** At least one signature must verify with one of the keys (apt accepts a document when any listed key signed it). */
async function checkSignatures(
  result: {signatures: {keyID: {toHex(): string}; verified: Promise<unknown>}[]},
  keys: Key[],
  what: string,
): Promise<void> {
  const problems: string[] = []
  for (const s of result.signatures) {
    try {
      await s.verified
      return
    } catch (err) {
      problems.push(`key ${s.keyID.toHex().toUpperCase()}: ${(err as Error).message}`)
    }
  }
  const known = keys.map((k) => k.getFingerprint().toUpperCase()).join(', ')
  throw new SignatureError(
    what,
    result.signatures.length === 0
      ? 'it carries no signature'
      : `no signature verifies with the ${keys.length === 1 ? 'key' : 'keys'} ${known}`,
    {details: problems},
  )
}
