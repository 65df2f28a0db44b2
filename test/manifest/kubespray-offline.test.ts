import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {loadManifest} from '../../src/lib/manifest/load.js'
import {mirroredPath} from '../../src/lib/manifest/mirror-path.js'
import {repoRoot} from '../helpers/cli.js'

// kubespray fetches each file from externalRepoEndpoint + the URL's host and
// path (files_repo), so an imported root must hold every file a default
// install downloads at its mirrored path. The list is kubespray's own, for the
// versions the manifest targets; its source is named in the fixture.
describe('manifests/kubernetes-1.29-amd64.yaml against kubespray v2.25.0', () => {
  it("has a file at the mirrored path of every default download of kubespray's offline list", async () => {
    const m = await loadManifest(join(repoRoot, 'manifests', 'kubernetes-1.29-amd64.yaml'))
    const list = (await readFile(join(repoRoot, 'test', 'fixtures', 'kubespray-v2.25.0-files.list'), 'utf8'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
    expect(list.length).toBeGreaterThan(10)
    // nginx unpacks both archives into one root, so binaries and packages both count.
    const paths = new Set([...m.binaries, ...m.packages].map((e) => e.path))
    const missing = list.filter((url) => !paths.has(mirroredPath(url)))
    expect(missing).toEqual([])
  })
})
