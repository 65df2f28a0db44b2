import {copyFile, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {readPublicKeys} from '../../../src/lib/ospkgs/openpgp.js'
import {parseLayout, TAG} from '../../../src/lib/ospkgs/rpm/header.js'
import {verifyRpmFile} from '../../../src/lib/ospkgs/rpm/package-signature.js'
import {buildRpms, makeRpmKey, type RpmKey, signRpms} from '../../helpers/rpm-repo.js'
import {makeTempDir} from '../../helpers/tmp.js'

// Packages built by rpmbuild and signed by Debian's rpmsign: EdDSA keys get
// RPMSIGTAG_DSA (267), RSA keys RPMSIGTAG_RSA (268), both v4 header-only.
let ed: RpmKey
let rsa: RpmKey
let dir: string
let unsigned: string
let edSigned: string
let rsaSigned: string

beforeAll(async () => {
  ;[ed, rsa] = await Promise.all([
    makeRpmKey('ed <ed@test.invalid>', 'ed25519'),
    makeRpmKey('rsa <rsa@test.invalid>', 'rsa3072'),
  ])
  const [built] = await buildRpms([{name: 'hello', version: '2.0', release: '1', files: ['/usr/bin/hello']}])
  dir = await makeTempDir()
  unsigned = join(dir, 'unsigned.rpm')
  edSigned = join(dir, 'ed.rpm')
  rsaSigned = join(dir, 'rsa.rpm')
  await copyFile(built, unsigned)
  await copyFile(built, edSigned)
  await copyFile(built, rsaSigned)
  await signRpms([edSigned], ed)
  await signRpms([rsaSigned], rsa)
}, 120_000)

async function keysOf(...k: RpmKey[]) {
  const file = join(dir, `keys-${k.map((x) => x.uid.split(' ')[0]).join('-')}.asc`)
  await writeFile(file, k.map((x) => x.armored).join('\n'))
  return readPublicKeys(file, 'gpgKey')
}

describe('verifyRpmFile', () => {
  it('puts the signature where rpm 4.18 does', async () => {
    const edLayout = parseLayout(await readFile(edSigned), 'ed')!
    const rsaLayout = parseLayout(await readFile(rsaSigned), 'rsa')!
    expect(edLayout.signature.bin(TAG.SIG_DSA)).toBeDefined()
    expect(rsaLayout.signature.bin(TAG.SIG_RSA)).toBeDefined()
    expect(rsaLayout.header.strings(TAG.PAYLOADDIGEST)?.[0]).toMatch(/^[0-9a-f]{64}$/)
  })

  it('accepts an EdDSA and an RSA header signature by a key of gpgKey', async () => {
    const keys = await keysOf(ed, rsa)
    expect((await verifyRpmFile(edSigned, keys)).nevra).toBe('hello-2.0-1.noarch')
    expect((await verifyRpmFile(rsaSigned, keys)).keyIds).toHaveLength(1)
  })

  it('refuses an unsigned package', async () => {
    await expect(verifyRpmFile(unsigned, await keysOf(ed), 'hello.rpm')).rejects.toThrow(
      'hello.rpm (hello-2.0-1.noarch): signature check failed: the package is not signed',
    )
  })

  it('refuses a package signed by a key gpgKey does not hold', async () => {
    await expect(verifyRpmFile(rsaSigned, await keysOf(ed))).rejects.toThrow(
      /signed by key [0-9a-f]{16}, which gpgKey does not hold/,
    )
  })

  it('refuses a changed header', async () => {
    const bytes = await readFile(edSigned)
    const layout = parseLayout(bytes, 'x')!
    // The last byte of the main header's store: inside the signed bytes.
    const changed = Buffer.from(bytes)
    changed[layout.payloadOffset - 1] ^= 0x01
    const file = join(dir, 'header-changed.rpm')
    await writeFile(file, changed)
    await expect(verifyRpmFile(file, await keysOf(ed))).rejects.toThrow(/does not verify/)
  })

  it('refuses a changed payload by the payload digest in the signed header', async () => {
    const bytes = Buffer.from(await readFile(rsaSigned))
    bytes[bytes.length - 10] ^= 0x01
    const file = join(dir, 'payload-changed.rpm')
    await writeFile(file, bytes)
    await expect(verifyRpmFile(file, await keysOf(rsa))).rejects.toThrow(/payload digest mismatch/)
  })

  it('refuses what is no rpm', async () => {
    const file = join(dir, 'not.rpm')
    await writeFile(file, Buffer.alloc(200, 1))
    await expect(verifyRpmFile(file, await keysOf(ed))).rejects.toThrow(/not an rpm package/)
    await writeFile(file, (await readFile(edSigned)).subarray(0, 300))
    await expect(verifyRpmFile(file, await keysOf(ed))).rejects.toThrow(/ends inside its headers/)
  })
})
