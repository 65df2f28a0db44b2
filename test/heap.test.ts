import {execFile} from 'node:child_process'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {describe, expect, it} from 'vitest'

import {repoRoot} from './helpers/cli.js'
import {makeTempDir} from './helpers/tmp.js'

const run = promisify(execFile)

async function youngGeneration(mode: 'tuned' | 'default' | 'tuned-worker' | 'tuned-worker-only' | 'tuned-write-thread', ...args: string[]): Promise<{initial: number; largest: number}> {
  const {stdout} = await run(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/fixtures/heap-load.ts'), mode, ...args], {cwd: repoRoot})
  return JSON.parse(stdout) as {initial: number; largest: number}
}

describe('tuneHeap', () => {
  // Set from inside the process, as every command does: the flags must take effect there, not only on node's command line.
  it('keeps the young generation at its initial size under a load that grows it by default', async () => {
    const [tuned, untuned] = await Promise.all([youngGeneration('tuned'), youngGeneration('default')])
    expect(untuned.largest).toBeGreaterThanOrEqual(4 * untuned.initial)
    expect(tuned.largest).toBe(tuned.initial)
  }, 60_000)

  it('keeps it so after a worker thread started and ended, once retuneHeap ran (the start resets the flags)', async () => {
    const [again, reset] = await Promise.all([youngGeneration('tuned-worker'), youngGeneration('tuned-worker-only')])
    expect(reset.largest).toBeGreaterThanOrEqual(4 * reset.initial)
    expect(again.largest).toBe(again.initial)
  }, 60_000)

  it('keeps it so after the write thread of import nginx started, wrote and ended', async () => {
    const thread = await youngGeneration('tuned-write-thread', await makeTempDir('heap-write-thread-'))
    expect(thread.largest).toBe(thread.initial)
  }, 60_000)
})
