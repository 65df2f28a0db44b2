import {type ArchiveKind, ARCHIVES, writtenByOtherArchive} from '../bundle/format/archive-entries.js'
import {baseNames} from '../bundle/format/delta.js'
import type {Bundle} from '../bundle/format/open-bundle.js'
import type {FilePutAction, FileSink, OpenableFileSink} from '../content/roles.js'
import {filesHeld} from '../targets/holds.js'
import {formatBytes} from '../ui/format.js'
import type {Progress, TaskHandle} from '../ui/index.js'
import {plural} from '../ui/table.js'
import {isDelta, refuseIncompleteTarget} from './delta-check.js'
import {type BaseChecked, type ImportedFile, type ImportTotals, inLockOrder, totals} from './result.js'
import {refusedBundle} from './verify-first.js'

export interface FileImportOptions {
  progress: Progress
  /**
   * The bundle's full check of the two archives, run only when the import's
   * own read found a problem: its report (every problem, not just the first)
   * is preferred to that problem. Absent when the caller verified before (a
   * sink whose puts are visible at once).
   */
  verify?: () => Promise<void>
  /** Checks at once of a delta's left-out files. */
  concurrency?: number
}

/**
 * The one loop of `import nginx` and `import s3` (and serve's file cache):
 * a delta's left-out files checked on the sink first, then both `.tar.gz`
 * read at once (each is one sequential stream; gunzip of each runs on its
 * own thread), every checked entry put into the sink; the first failure
 * stops the other archive, and both must have ended (the entry each was
 * putting registered with the sink) before the sink aborts. That single read
 * is the whole check of what is imported: each entry against bundle.json
 * (every listed file once, nothing else), and each archive's raw bytes,
 * hashed as they are read, with bundle.json against SHA256SUMS. Only then
 * does the sink commit; the result lists every file once, in bundle.json order.
 */
export async function importFiles(
  bundle: Bundle,
  sink: OpenableFileSink,
  opts: FileImportOptions,
): Promise<ImportTotals> {
  const {progress} = opts
  let baseChecked: BaseChecked | undefined
  const {lock} = bundle
  if (isDelta(lock)) {
    // What the delta leaves out must be there already, checked before the target is even created.
    const left = lock.files.filter((f) => f.fromBase)
    const held = await filesHeld(left, (f) => sink.has(f), opts.concurrency)
    refuseIncompleteTarget(
      sink.name,
      lock,
      left.filter((f) => !held.has(f)).map((f) => ({what: `${sink.where(f.path)} (sha256 ${f.sha256})`, size: f.size})),
    )
    baseChecked = {bases: baseNames(lock.base ?? []), files: left.length, bytes: left.reduce((n, f) => n + f.size, 0)}
  }
  const rows: ImportedFile[] = []
  const tasks: {task: TaskHandle; rows: ImportedFile[]}[] = []
  /** The sha256 of each archive file (each part) as the import read it. */
  const read = new Map<string, string>()
  try {
    await sink.open()
    const abort = new AbortController()
    const shared: ArchiveImport = {bundle, sink, signal: abort.signal, read}
    const settled = await Promise.allSettled(
      ARCHIVES.map((a) => {
        const mine: ImportedFile[] = []
        const task = startTask(bundle, a.kind, progress)
        tasks.push({task, rows: mine})
        return importArchive(shared, a.kind, task, (row) => {
          mine.push(row)
          rows.push(row)
        }).catch((err: unknown) => {
          abort.abort(err)
          throw err
        })
      }),
    )
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
    const problems = await bundle.sumsProblems(['files', 'packages'], read)
    if (problems.length > 0) throw refusedBundle(bundle.dir, problems)
    await sink.commit()
  } catch (err) {
    await sink.abort()
    // Verification names every problem; prefer its report to the first one the import met.
    if (opts.verify) await opts.verify()
    throw err
  }
  for (const {task, rows: mine} of tasks) {
    const written = mine.filter((r) => r.action === 'written').length
    task.done(`${written} written, ${mine.length - written} already there`)
  }
  // In bundle.json order, whatever order the archives were read and the puts finished in.
  return {...totals(inLockOrder(lock, rows, (p) => sink.where(p))), ...(baseChecked ? {baseChecked} : {})}
}

function startTask(bundle: Bundle, kind: ArchiveKind, progress: Progress): TaskHandle {
  const files = bundle.filesOf(kind)
  const name = ARCHIVES.find((a) => a.kind === kind)!.name
  const total = files.reduce((n, f) => n + f.size, 0)
  return progress.task(`${name}: ${plural(files.length, 'file')}, ${formatBytes(total)}`, total)
}

/** What the reads of both archives share: the bundle, the sink, the stop signal, and the sha256 of each part read. */
interface ArchiveImport {
  bundle: Bundle
  sink: FileSink
  signal: AbortSignal
  read: Map<string, string>
}

async function importArchive(
  shared: ArchiveImport,
  kind: ArchiveKind,
  task: TaskHandle,
  row: (r: ImportedFile) => void,
): Promise<void> {
  const {bundle, sink, signal, read} = shared
  const elsewhere = writtenByOtherArchive(bundle.lock, kind)
  try {
    // Read even when bundle.json lists nothing for it: an entry it does not list is refused, not ignored.
    for await (const batch of bundle.entries(kind, read)) {
      for (const entry of batch) {
        signal.throwIfAborted()
        if (elsewhere.has(entry.path)) {
          task.advance(entry.file.size)
          continue
        }
        const {file} = entry
        const ref = {path: entry.path, size: file.size, sha256: file.sha256}
        const opts = {
          executable: entry.executable,
          onBytes: (n: number) => task.advance(n),
          onStored: (action: FilePutAction) =>
            row({path: sink.where(entry.path), size: file.size, sha256: file.sha256, action}),
        }
        // A small file checked already goes in without an await where the sink can take it at once.
        const putting =
          entry.bytes && sink.putWhole
            ? sink.putWhole(ref, entry.bytes, opts)
            : sink.put(ref, stoppable(entry.body, signal), opts)
        if (putting) await putting
      }
    }
  } catch (err) {
    // Stopped because the other archive failed: that one's line names the problem, not this one.
    task.fail(signal.aborted && err === signal.reason ? 'stopped: the other archive failed' : (err as Error).message)
    throw err
  }
}

/**
 * A body that stops with the other archive's failure between two chunks: a
 * big file streaming when the import is refused is given up (the sink
 * removes what it staged of it) rather than written to its end first.
 */
async function* stoppable(body: AsyncIterable<Buffer>, signal: AbortSignal): AsyncGenerator<Buffer> {
  for await (const chunk of body) {
    signal.throwIfAborted()
    yield chunk
  }
}
