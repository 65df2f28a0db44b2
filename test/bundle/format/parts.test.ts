import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {openBundle} from '../../../src/lib/bundle/format/open-bundle.js'
import {bundlePartPaths, partName} from '../../../src/lib/bundle/format/parts.js'
import {BundleError} from '../../../src/lib/errors.js'
import {makeTempDir} from '../../helpers/tmp.js'

describe('split parts', () => {
  it('finds the numbered parts in order', async () => {
    const dir = await makeTempDir()
    // Written out of order, and past 999 parts the names get a fourth digit.
    for (const i of [2, 0, 1]) await writeFile(join(dir, partName('a.tar', i)), `part${i};`)
    await writeFile(join(dir, 'a.tar.sha256'), 'not a part')
    expect((await bundlePartPaths(dir, 'a.tar')).map((p) => p.slice(dir.length + 1))).toEqual([
      'a.tar.000',
      'a.tar.001',
      'a.tar.002',
    ])
    expect(partName('x', 1000)).toBe('x.1000')
  })

  it('prefers the whole file (a cat rejoin) and refuses gaps, folders and absence', async () => {
    const dir = await makeTempDir()
    await writeFile(join(dir, 'a.tar.000'), 'x')
    await writeFile(join(dir, 'a.tar.002'), 'y')
    await expect(bundlePartPaths(dir, 'a.tar')).rejects.toThrow(/a\.tar\.001 is missing/)
    await writeFile(join(dir, 'a.tar'), 'whole')
    expect(await bundlePartPaths(dir, 'a.tar')).toEqual([join(dir, 'a.tar')])
    await expect(bundlePartPaths(dir, 'b.tar')).rejects.toThrow(BundleError)
    await mkdir(join(dir, 'c.tar'))
    await expect(bundlePartPaths(dir, 'c.tar')).rejects.toThrow(/not a regular file/)
    await expect(bundlePartPaths(join(dir, 'nope'), 'a.tar')).rejects.toThrow(BundleError)
  })
})

describe('openBundle', () => {
  const good = {
    apiVersion: 'airlock/v1',
    name: 'k8s',
    images: [
      {
        ref: 'docker.io/library/nginx:1',
        digest: `sha256:${'a'.repeat(64)}`,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        platforms: ['linux/amd64'],
        size: 3,
      },
    ],
    files: [{kind: 'binary', url: 'https://x/y', path: 'x/y', size: 1, sha256: 'b'.repeat(64)}],
  }

  it('reads a valid lock', async () => {
    const dir = await makeTempDir()
    await writeFile(join(dir, 'bundle.json'), JSON.stringify(good))
    expect((await openBundle(dir)).lock).toEqual(good)
  })

  it('is a BundleError (exit 2) when missing, not JSON, or malformed, naming every problem', async () => {
    const dir = await makeTempDir()
    await expect(openBundle(dir)).rejects.toThrow(/bundle\.json is missing/)
    await writeFile(join(dir, 'bundle.json'), '{')
    await expect(openBundle(dir)).rejects.toMatchObject({
      kind: 'bundle',
      exitCode: 2,
      message: expect.stringMatching(/not valid JSON/),
    })
    const bad = {
      ...good,
      apiVersion: 'v2',
      images: [{...good.images[0], digest: 'sha256:zz'}, good.images[0]],
      files: [{...good.files[0], path: '../etc/passwd', kind: 'other', size: -1, sha256: 'x'}],
    }
    await writeFile(join(dir, 'bundle.json'), JSON.stringify(bad))
    const err = (await openBundle(dir).catch((e: unknown) => e)) as BundleError
    expect(err).toBeInstanceOf(BundleError)
    expect(err.details).toEqual([
      'apiVersion: expected "airlock/v1", got "v2"',
      'images[0].digest: must be sha256:<64 hex>',
      'images[1].ref: docker.io/library/nginx:1 is listed twice',
      'files[0].kind: must be binary, package, chart, os-metadata or os-package',
      'files[0].path: must be a relative path without empty, . or .. segments',
      'files[0].size: must be a whole number >= 0',
      'files[0].sha256: must be 64 lowercase hex digits',
    ])
  })

  it('refuses a path that is a binary and a package with different sha256, and allows one content in both', async () => {
    const dir = await makeTempDir()
    const pkg = {...good.files[0], kind: 'package'}
    await writeFile(join(dir, 'bundle.json'), JSON.stringify({...good, files: [good.files[0], pkg]}))
    expect((await openBundle(dir)).lock.files).toHaveLength(2)
    await writeFile(
      join(dir, 'bundle.json'),
      JSON.stringify({...good, files: [good.files[0], {...pkg, sha256: 'c'.repeat(64)}]}),
    )
    const err = (await openBundle(dir).catch((e: unknown) => e)) as BundleError
    expect(err).toBeInstanceOf(BundleError)
    expect(err.details).toEqual([
      'files[1].path: x/y is both a binary and a package with a different sha256 (they are imported into one tree)',
    ])
  })

  it('refuses a file at a path another file needs as a folder, in either order and across the two trees', async () => {
    const dir = await makeTempDir()
    const under = {...good.files[0], path: 'x/y/z', sha256: 'c'.repeat(64)}
    for (const [files, expected] of [
      [[good.files[0], under], 'files[0].path: x/y is a file, and a folder for files[1] (x/y/z)'],
      [[under, {...good.files[0], kind: 'package'}], 'files[1].path: x/y is a file, and a folder for files[0] (x/y/z)'],
    ] as const) {
      await writeFile(join(dir, 'bundle.json'), JSON.stringify({...good, files}))
      const err = (await openBundle(dir).catch((e: unknown) => e)) as BundleError
      expect(err).toBeInstanceOf(BundleError)
      expect(err.details).toEqual([expected])
    }
    await writeFile(
      join(dir, 'bundle.json'),
      JSON.stringify({...good, files: [good.files[0], {...under, path: 'x/yz'}]}),
    )
    expect((await openBundle(dir)).lock.files).toHaveLength(2)
  })
})
