import {spawn} from 'node:child_process'
import {join} from 'node:path'

import {expect, it} from 'vitest'

import {repoRoot} from '../helpers/cli.js'

// The README's quick start runs this demo; keep it working at every commit.
it('npm run demo builds a bundle and imports it onto nginx, S3 and a registry', async () => {
  const {code, out} = await new Promise<{code: number; out: string}>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'demo.ts')], {
      cwd: repoRoot,
      env: {...process.env, CI: '1', NO_COLOR: '1'},
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('exit', (c) => resolve({code: c ?? 1, out}))
  })
  expect(out).not.toContain('demo stopped')
  expect(code, out).toBe(0)
  expect(out).toMatch(
    /GET http:\/\/127\.0\.0\.1:\d+\/127\.0\.0\.1:\d+\/release\/v1\.29\.0\/bin\/linux\/amd64\/kubeadm -> 200, sha256 ea2b6699bd6f2f55d3247cc0fef2b9ecdd7851d44f7a61699e16bcdd163a5f5f/,
  )
  expect(out).toMatch(/externalRepoEndpoint: http:\/\/127\.0\.0\.1:\d+/)
  expect(out).toContain('7 objects written')
  expect(out).toMatch(/-> 127\.0\.0\.1:\d+\/mirror\/demo\/nginx:1\.25\.3/)
  expect(out).toContain('Done.')
}, 300_000)
