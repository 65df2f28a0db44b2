import {createHash} from 'node:crypto'
import {pipeline, Readable} from 'node:stream'
import {createGunzip} from 'node:zlib'

import {readTar} from '../../tar/reader.js'
import {plural} from '../../ui/table.js'
import {ByteCap, checkEntryPath, entryTypeProblem, lockFilesOf, maxTarBytes} from './archive-entries.js'
import {BUNDLE_FILES, TOP_FOLDERS} from './bundle-files.js'
import {describeReadError, type OpenedArchive, type VerificationRun} from './verification-run.js'

/**
 * A `.tar.gz` against bundle.json: each entry's path, type, size and sha256,
 * nothing extra, nothing missing; its parts' sha256 go to the run for
 * SHA256SUMS, and each intact file to what the run found carried.
 */
export async function verifyFilesArchive(
  run: VerificationRun,
  kind: 'files' | 'packages',
): Promise<OpenedArchive | undefined> {
  const problems = run.problems(kind)
  const name = BUNDLE_FILES[kind]
  const top = TOP_FOLDERS[kind]
  const expected = lockFilesOf(run.bundle.lock, kind)
  const byPath = new Map(expected.map((f) => [f.path, f]))
  const seen = new Set<string>()
  const opened = await run.openParts(name, problems)
  if (!opened) {
    if (expected.length > 0)
      problems.push(`${name}: the ${plural(expected.length, 'file')} bundle.json lists for it cannot be checked`)
    return undefined
  }
  const {reader} = opened
  const gunzip = createGunzip({chunkSize: 256 * 1024})
  // The same decompression cap as an import: a gzip bomb is a problem line, not a full disk or memory.
  const capped = new ByteCap(maxTarBytes(expected, top), name)
  const stream = pipeline(Readable.from(reader.chunks(), {objectMode: false}), gunzip, capped, () => {})
  let complete = false
  try {
    for await (const {header, body} of readTar(stream, name)) {
      const label = `${name}: ${header.path}`
      let rel: string
      try {
        rel = checkEntryPath(header.path, top)
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`)
        continue
      }
      if (header.type === 'directory') continue
      const why = entryTypeProblem(header)
      if (why) {
        problems.push(`${label}: ${why} (only files and folders belong in a bundle)`)
        continue
      }
      const f = byPath.get(rel)
      if (!f) {
        problems.push(`${label}: extra file, not listed in bundle.json`)
        continue
      }
      if (seen.has(rel)) {
        problems.push(`${label}: appears twice`)
        continue
      }
      seen.add(rel)
      const hash = createHash('sha256')
      let n = 0
      for await (const c of body) {
        hash.update(c)
        n += c.length
      }
      if (n !== f.size) problems.push(`${label}: ${n} bytes, bundle.json says ${f.size}`)
      const hex = hash.digest('hex')
      if (hex !== f.sha256) problems.push(`${label}: sha256 ${hex}, bundle.json says ${f.sha256}`)
      else if (n === f.size) run.carried.files.add(`${f.path}\0${hex}`)
    }
    complete = true
  } catch (err) {
    // The cap's message already names the archive.
    const why = describeReadError(err)
    problems.push(why.startsWith(`${name}: `) ? why : `${name}: ${why}`)
  } finally {
    stream.destroy()
  }
  const missing = expected.filter((f) => !seen.has(f.path))
  if (complete)
    for (const f of missing) problems.push(`${name}: ${top}/${f.path} is listed in bundle.json but not in the archive`)
  else if (missing.length > 0)
    problems.push(
      `${name}: ${plural(missing.length, 'file')} listed in bundle.json ${missing.length === 1 ? 'was' : 'were'} not reached`,
    )
  await reader.finish().catch((err: Error) => problems.push(`${name}: ${err.message}`))
  run.readAll(reader.digests)
  return opened.archive
}
