import {spawn} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {fileData, type FixtureFile, makeBundle, sha256Hex, tarBytes, tarHeader} from '../helpers/bundle-fixture.js'
import {repoRoot} from '../helpers/cli.js'
import {makeTempDir} from '../helpers/tmp.js'

const RUNS = 200

/** Runs test/helpers/refused-import-loop.mjs: `runs` refused imports in one process of the built library. */
function refusedLoop(
  bundle: string,
  root: string,
  runs: number,
  pauseMs: number,
): Promise<{code: number | null; stdout: string; stderr: string}> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'test', 'helpers', 'refused-import-loop.mjs'), bundle, root, String(runs), String(pauseMs)],
    {stdio: ['ignore', 'pipe', 'pipe']},
  )
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) =>
      resolve({code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString()}),
    )
  })
}

describe('import nginx, a refused bundle, again and again', () => {
  it(`exits 2 and leaves the root untouched ${RUNS} times in a row, though the write thread is stopped as its last report comes`, async () => {
    const work = await makeTempDir('nginx-refused-loop-')
    const dir = join(work, 'bundle')
    // The bundle of the fault that got through: offline-files.tar.gz with a 128 MiB pax header on
    // its second file, component-tools.tar.gz with 300 valid 8 KiB files, both read at once. The
    // first binary is big enough to be streamed, small enough that the refusal comes while the
    // write thread still has files of the other archive.
    const small = Array.from({length: 300}, (_, i): FixtureFile => ({
      path: `127.0.0.1:15080/pkgs/d${i % 30}/f${i}.bin`,
      data: fileData(8192),
      kind: 'package',
    }))
    const kubeadm: FixtureFile = {
      path: '127.0.0.1:15080/dl/v1/linux/amd64/kubeadm',
      data: fileData(1_000_000),
      executable: true,
    }
    const second: FixtureFile = {
      path: '127.0.0.1:15080/dl/v1/linux/amd64/kubectl',
      data: fileData(50_000),
      executable: true,
    }
    await makeBundle(dir, [kubeadm, second, ...small])
    const good = tarBytes([
      {name: 'offline-files/', type: '5', mode: 0o755},
      {name: `offline-files/${kubeadm.path}`, data: kubeadm.data, mode: 0o755},
    ])
    const paxBomb = Buffer.concat([
      good.subarray(0, good.length - 1024),
      tarHeader('PaxHeader', 'x', 128 * 1024 * 1024),
      Buffer.alloc(4096),
    ])
    await writeFile(join(dir, 'offline-files.tar.gz'), gzipSync(paxBomb))
    const sums = (await readFile(join(dir, 'SHA256SUMS'), 'utf8')).replace(
      /^[0-9a-f]{64}(?=  offline-files\.tar\.gz$)/m,
      sha256Hex(await readFile(join(dir, 'offline-files.tar.gz'))),
    )
    await writeFile(join(dir, 'SHA256SUMS'), sums)

    // One process for all the runs: a refusal that leaves anything pending ends it with exit 13.
    // The pause before each stop() is 150 ms: long enough for the write thread to finish the files it
    // was handed and post its reports, one of which then arrives after stop(). With the write thread
    // of before the fix (0e99800), 20 ms never failed (two loops of 200 runs), 100 ms failed late in
    // its one loop, and 150 ms ended the loop with exit 13 within its first 60 runs in each of 4
    // tries. It adds 30 s to the 200 runs.
    const r = await refusedLoop(dir, join(work, 'www'), RUNS, 150)
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({runs: RUNS, refused: RUNS, untouched: RUNS, codes: {2: RUNS}})
  }, 900_000)
})
