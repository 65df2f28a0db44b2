import {createPrivateKey, type KeyObject, scryptSync, sign, verify} from 'node:crypto'
import {readFile, rm} from 'node:fs/promises'
import {join} from 'node:path'

import nacl from 'tweetnacl'

import {BundleError, UsageError} from '../../errors.js'
import {readPemPublicKey} from '../../oci/cosign.js'
import {BUNDLE_FILES} from './bundle-files.js'

/**
 * A signed bundle: `SHA256SUMS.sig` beside SHA256SUMS, the base64 ECDSA
 * P-256 / SHA-256 signature (DER) of SHA256SUMS's exact bytes, as
 * `cosign sign-blob` writes it. SHA256SUMS names every other file with its
 * sha256, so the signature covers the whole bundle; the .sig itself is listed
 * nowhere (SHA256SUMS cannot hold it, and bundle.json is one of the files it
 * signs), as cosign's .sig stands beside its blob.
 */
export const SUMS_SIGNATURE = `${BUNDLE_FILES.sums}.sig`

/** Where cosign's encrypted key takes its password from (`COSIGN_PASSWORD` for cosign). */
export const SIGN_PASSWORD_ENV = 'AIRLOCK_SIGN_PASSWORD'

const COSIGN_PEM =
  /-----BEGIN ENCRYPTED (SIGSTORE|COSIGN) PRIVATE KEY-----([\s\S]*?)-----END ENCRYPTED \1 PRIVATE KEY-----/

/**
 * cosign's encrypted private key, as sigstore's cryptoutils writes it with go-securesystemslib `encrypted`: the PEM
 * body is JSON, scrypt (32-byte salt) derives the 32-byte key of a NaCl secretbox (24-byte nonce) around the PKCS#8
 * DER; byte fields are standard base64.
 */
interface CosignEncrypted {
  kdf: {name: string; params: {N: number; r: number; p: number}; salt: string}
  cipher: {name: string; nonce: string}
  ciphertext: string
}

const SCRYPT_PARAMS = [32768, 65536, 131072].map((N) => ({N, r: 8, p: 1}))

function decryptCosignKey(file: string, body: string, password: string): Buffer {
  let box: CosignEncrypted
  try {
    box = JSON.parse(Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8')) as CosignEncrypted
  } catch {
    throw new UsageError(`${file}: not a cosign key (its body is not the JSON cosign writes)`)
  }
  const {kdf, cipher} = box
  if (kdf?.name !== 'scrypt' || cipher?.name !== 'nacl/secretbox') {
    throw new UsageError(
      `${file}: a cosign key sealed with ${kdf?.name}/${cipher?.name}; only scrypt with nacl/secretbox is known`,
    )
  }
  const {N, r, p} = kdf.params ?? {}
  // The only parameter sets go-securesystemslib opens (legacy, standard: what cosign writes today, OWASP): anything
  // else is refused before scrypt runs, as there, so a doctored file cannot make it spend unbounded memory or time.
  if (!SCRYPT_PARAMS.some((q) => q.N === N && q.r === r && q.p === p)) {
    throw new UsageError(
      `${file}: unsupported scrypt parameters (N ${N}, r ${r}, p ${p}); cosign writes N 65536, r 8, p 1`,
    )
  }
  const key = scryptSync(password, Buffer.from(kdf.salt, 'base64'), 32, {N, r, p, maxmem: 256 * N * r + (1 << 20)})
  const opened = nacl.secretbox.open(Buffer.from(box.ciphertext, 'base64'), Buffer.from(cipher.nonce, 'base64'), key)
  if (!opened) {
    throw new UsageError(`${file}: the password does not open this key`, {
      suggestions: [`set ${SIGN_PASSWORD_ENV} to the password the key was made with`],
    })
  }
  return Buffer.from(opened)
}

/** An ECDSA P-256 private key: PEM (PKCS#8 or SEC1) or cosign's encrypted key, opened with AIRLOCK_SIGN_PASSWORD. */
export async function readSigningKey(file: string, env: NodeJS.ProcessEnv = process.env): Promise<KeyObject> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read the key ${file}: ${(err as Error).message}`)
  }
  let key: KeyObject
  const cosign = COSIGN_PEM.exec(text)
  if (cosign) {
    const password = env[SIGN_PASSWORD_ENV]
    if (password === undefined)
      throw new UsageError(`${file} is a cosign key sealed with a password: set ${SIGN_PASSWORD_ENV}`)
    key = createPrivateKey({key: decryptCosignKey(file, cosign[2], password), format: 'der', type: 'pkcs8'})
  } else {
    try {
      key = createPrivateKey({key: text, format: 'pem'})
    } catch (err) {
      throw new UsageError(`${file} is not a PEM private key: ${(err as Error).message}`, {
        suggestions: ['pass an ECDSA P-256 key: PEM (PKCS#8 or SEC1), or the cosign.key of cosign generate-key-pair'],
      })
    }
  }
  checkP256(file, key)
  return key
}

/** A PEM public key (cosign.pub) to check a bundle's signature with. */
export async function readBundleKey(file: string): Promise<KeyObject> {
  const key = await readPemPublicKey(
    file,
    'pass the cosign.pub (or the public half) of the key the bundle was signed with',
  )
  checkP256(file, key)
  return key
}

function checkP256(file: string, key: KeyObject): void {
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new UsageError(
      `${file}: a ${key.asymmetricKeyType}${curve ? ` ${curve}` : ''} key; a bundle is signed with ECDSA P-256`,
    )
  }
}

/** SHA256SUMS.sig's text for these SHA256SUMS bytes. */
export function signSums(sums: Buffer, key: KeyObject): string {
  return `${sign('sha256', sums, key).toString('base64')}\n`
}

/** Takes away a SHA256SUMS.sig left by an earlier signed bundle in the same folder: it would not sign this one. */
export async function removeStaleSignature(dir: string): Promise<void> {
  await rm(join(dir, SUMS_SIGNATURE), {force: true})
}

/**
 * `--bundle-key`: SHA256SUMS.sig must be there and verify SHA256SUMS's exact
 * bytes with the key, before anything else of the bundle is read. Refused
 * otherwise (an invalid bundle, exit 2).
 */
export async function checkBundleSignature(dir: string, key: KeyObject, keyFile: string): Promise<void> {
  const refuse = (why: string) =>
    new BundleError(`${dir}: ${why}; nothing was imported`, {
      details: [`only a bundle signed with the private half of ${keyFile} is taken`],
    })
  const sig = await readFile(join(dir, SUMS_SIGNATURE), 'utf8').catch(() => undefined)
  if (sig === undefined) throw refuse(`${SUMS_SIGNATURE} is missing: the bundle is not signed`)
  const sums = await readFile(join(dir, BUNDLE_FILES.sums)).catch(() => undefined)
  if (sums === undefined) throw refuse(`${BUNDLE_FILES.sums} is missing`)
  const der = Buffer.from(sig.trim(), 'base64')
  let ok: boolean
  try {
    ok = der.length > 0 && verify('sha256', sums, key, der)
  } catch {
    ok = false
  }
  if (!ok) throw refuse(`${SUMS_SIGNATURE} does not verify ${BUNDLE_FILES.sums} with ${keyFile}`)
}
