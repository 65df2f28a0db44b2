import {type Bundle, openBundle} from '../bundle/format/open-bundle.js'
import {RootSink} from '../targets/root/root-sink.js'
import {type Progress, silentProgress} from '../ui/index.js'
import {importFiles} from './file-import.js'
import {type OsSourceFile, writeOsSources} from './os-sources.js'
import type {ImportTotals} from './result.js'
import {verifyBeforeImport} from './verify-first.js'

export interface NginxImportOptions {
  /** The web server's document root; created when missing. */
  root: string
  progress?: Progress
  /** The URL the root is served at, for the OS repositories' source lines. */
  endpoint?: string
}

export interface NginxImportResult extends ImportTotals {
  root: string
  /** True when the root was missing and the import created it (a mistyped --root shows here). */
  createdRoot: boolean
  /** A node's source file per OS repository, written beside it. */
  osSources: OsSourceFile[]
}

/**
 * `import nginx`: unpack both `.tar.gz` (top folder stripped) into the
 * root, verified by that single read (SHA256SUMS of each archive and of
 * bundle.json, every entry against bundle.json; not offline-images.tar,
 * which it does not import): every file is first staged by the `RootSink`
 * (complete, checked against bundle.json, flushed under a temporary name
 * beside its target); only when both archives checked out in full are they
 * renamed to their final names. A refused bundle leaves nothing behind, and
 * the bundle's verification of the two archives then runs for its report of
 * every problem. `at` is the bundle, or its folder to open.
 */
export async function importNginx(at: Bundle | string, opts: NginxImportOptions): Promise<NginxImportResult> {
  const progress = opts.progress ?? silentProgress
  const bundle = typeof at === 'string' ? await openBundle(at) : at
  const {lock} = bundle
  const sink = new RootSink(opts.root, new Set(lock.files.map((f) => f.path)))
  const result = await importFiles(bundle, sink, {
    progress,
    verify: () => verifyBeforeImport(bundle, ['files', 'packages'], progress),
  })
  // After the commit: a source line only ever names a repository that is there.
  const osSources = await writeOsSources(sink.path, lock, opts.endpoint)
  return {root: sink.path, createdRoot: sink.createdRoot, ...result, osSources}
}
