import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fileData, type FixtureFile, makeBundle} from '../helpers/bundle-fixture.js'
import {type CliResult, runCli, runProgram} from '../helpers/cli.js'
import {ensureExecutable} from '../helpers/executable.js'
import {type S3Server, startRgw} from '../helpers/rgw.js'
import {makeTempDir} from '../helpers/tmp.js'

const FILES: FixtureFile[] = [
  {path: 'dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubeadm', data: fileData(6_000_000), executable: true},
  {path: 'example.com/tools/nerdctl-1.7.0-linux-amd64.tar.gz', data: fileData(200_000), kind: 'package'},
]

/** What airlock itself writes on stderr without a TTY: progress lines. Anything a dependency or Node prints on its own is none of them. */
function strays(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => /warning|\(node:\d+\)|deprecat|experimental/i.test(l))
}

describe('no stray warnings (Ceph RGW)', () => {
  let s3: S3Server
  let bundle: string
  let exe: string
  const args = (bucket: string) => [
    'import',
    's3',
    bundle,
    '--endpoint',
    s3.endpoint,
    '--bucket',
    bucket,
    '--create-bucket',
    '--access-key',
    s3.accessKey,
    '--secret-key',
    s3.secretKey,
    '--region',
    s3.region,
    '--part-size',
    '5',
  ]

  beforeAll(async () => {
    ;[s3, exe] = await Promise.all([startRgw(), ensureExecutable()])
    bundle = (await makeBundle(join(await makeTempDir('e2e-exe-s3-'), 'bundle'), FILES)).dir
  })
  afterAll(async () => {
    await s3?.stop()
  })

  it('the executable runs on Node.js 24 or later', async () => {
    const r = await runProgram(exe, ['--version'])
    expect(r.code, r.stderr).toBe(0)
    const major = Number(/node-v(\d+)\./.exec(r.stdout)?.[1])
    expect(major, r.stdout).toBeGreaterThanOrEqual(24)
  })

  it("the executable's import s3 prints its progress and nothing of the SDK's or Node's own", async () => {
    const r = await runProgram(exe, args('from-exe'))
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain('1 written')
    expect(strays(r)).toEqual([])
  })

  it("import s3 from source (node bin/run.js) prints nothing of the SDK's or Node's own either", async () => {
    const r = await runCli(args('from-source'))
    expect(r.code, r.stderr).toBe(0)
    expect(strays(r)).toEqual([])
  })
})
