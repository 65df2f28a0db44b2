import {execFile} from 'node:child_process'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {describe, expect, it} from 'vitest'

import {STREAMING_GROWTH, streamingGrowth} from '../src/lib/heap.js'
import {repoRoot} from './helpers/cli.js'
import {makeTempDir} from './helpers/tmp.js'

const run = promisify(execFile)

type Mode =
  | 'tuned'
  | 'default'
  | 'tuned-worker'
  | 'tuned-worker-only'
  | 'tuned-write-thread'
  | 'tuned-streaming'
  | 'tuned-streaming-upload'
  | 'tuned-streamed'

async function youngGeneration(
  mode: Mode,
  ...args: string[]
): Promise<{initial: number; largest: number; major: number}> {
  const {stdout} = await run(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'test/fixtures/heap-load.ts'), mode, ...args],
    {cwd: repoRoot},
  )
  return JSON.parse(stdout) as {initial: number; largest: number; major: number}
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

  // A large blob streaming under the tight old-generation limit cost a full collection every few MB (30 for 400 MB).
  it('lets the old generation grow further while a large body streams, and no longer once it ended', async () => {
    const [tuned, streaming, streamed] = await Promise.all([
      youngGeneration('tuned'),
      youngGeneration('tuned-streaming'),
      youngGeneration('tuned-streamed'),
    ])
    // Counts of full collections vary by one or two with the timing of concurrent marking; the gap is twofold.
    expect(streaming.major).toBeLessThanOrEqual(tuned.major * 0.6)
    expect(streamed.major).toBeGreaterThanOrEqual(tuned.major * 0.8)
    // The young generation stays put all the same.
    expect(streaming.largest).toBe(streaming.initial)
  }, 120_000)

  // An upload holds the archive's plan beside its stream: a smaller factor than a download's, yet far fewer collections than the tight limit.
  it('lets it grow too while an upload streams', async () => {
    const [tuned, upload] = await Promise.all([youngGeneration('tuned'), youngGeneration('tuned-streaming-upload')])
    expect(upload.major).toBeLessThanOrEqual(tuned.major * 0.7)
  }, 120_000)
})

describe('streamingGrowth', () => {
  it("takes the kind's factor, the smaller one while both kinds stream, and none while nothing does", () => {
    expect(streamingGrowth({download: 0, upload: 0})).toBeUndefined()
    expect(streamingGrowth({download: 2, upload: 0})).toBe(STREAMING_GROWTH.download)
    expect(streamingGrowth({download: 0, upload: 1})).toBe(STREAMING_GROWTH.upload)
    expect(streamingGrowth({download: 3, upload: 1})).toBe(Math.min(STREAMING_GROWTH.download, STREAMING_GROWTH.upload))
    expect(STREAMING_GROWTH.upload).toBeLessThan(STREAMING_GROWTH.download)
  })
})
