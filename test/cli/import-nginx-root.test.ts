import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {writeBundle} from '../../src/lib/bundle/write/bundle.js'
import {runCli} from '../helpers/cli.js'
import {makeStoreFixture} from '../helpers/store-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

describe('import nginx --root', () => {
  it('says on stderr when it created a missing --root (a mistyped one would go unnoticed), and not when it was there', async () => {
    const store = await makeStoreFixture()
    const bundle = await makeTempDir('airlock-root-bundle-')
    await writeBundle({store: store.root, out: bundle})
    const parent = await makeTempDir('airlock-root-')
    const typo = join(parent, 'srv', 'wwww')
    const r = await runCli(['import', 'nginx', bundle, '--root', typo])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`created --root ${typo}`)

    const there = join(parent, 'www')
    await mkdir(there)
    const again = await runCli(['import', 'nginx', bundle, '--root', there])
    expect(again.code, again.stderr).toBe(0)
    expect(again.stderr).not.toContain('created --root')
  })
})
