import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {RootSink} from '../../src/lib/targets/root/root-sink.js'
import {fileSinkContract} from '../helpers/file-sink-contract.js'
import {MemoryFileSink} from '../helpers/memory-file-sink.js'
import {makeTempDir} from '../helpers/tmp.js'

// The S3 bucket runs the same suite against Ceph RGW, in test/e2e/file-sink-s3.test.ts.

fileSinkContract('RootSink', async () => {
  const root = join(await makeTempDir('file-sink-root-'), 'www')
  return {
    sink: new RootSink(root),
    again: () => new RootSink(root),
    read: (path) => readFile(join(root, path)).catch(() => undefined),
  }
})

fileSinkContract('MemoryFileSink', async () => {
  const sink = new MemoryFileSink()
  return {sink, again: () => sink, read: async (path) => sink.files.get(path)?.bytes}
})
