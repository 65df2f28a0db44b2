import {readBundleLock} from '../bundle/read-lock.js'
import {silentProgress, type Progress} from '../ui/index.js'
import {importFiles} from './file-import.js'
import type {ImportTotals} from './result.js'
import {RootSink} from './root-sink.js'
import {verifyBeforeImport} from './verify-first.js'

export interface NginxImportOptions {
  /** The web server's document root; created when missing. */
  root: string
  progress?: Progress
}

export interface NginxImportResult extends ImportTotals {
  root: string
}

/**
 * `import nginx`: unpack both `.tar.gz` (top folder stripped) into the
 * root, verified. The bundle's verification of both archives (SHA256SUMS,
 * every entry; not offline-images.tar, which it does not import) runs at
 * the same time as the unpacking, on the other core, and decides: every
 * file is first staged by the `RootSink` (complete, checked against
 * bundle.json, flushed under a temporary name beside its target); only when
 * verification passed and every entry was staged are they renamed to their
 * final names. A refused bundle leaves nothing behind.
 */
export async function importNginx(dir: string, opts: NginxImportOptions): Promise<NginxImportResult> {
  const progress = opts.progress ?? silentProgress
  const lock = await readBundleLock(dir)
  const sink = new RootSink(opts.root, new Set(lock.files.map((f) => f.path)))
  const result = await importFiles(dir, lock, sink, {
    progress,
    verify: async () => void (await verifyBeforeImport(dir, ['files', 'packages'], progress)),
  })
  return {root: sink.path, ...result}
}
