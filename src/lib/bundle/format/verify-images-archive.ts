import {createHash} from 'node:crypto'
import {Readable} from 'node:stream'

import {MAX_MANIFEST_BYTES} from '../../defaults.js'
import {streamingHeap} from '../../heap.js'
import {readTar} from '../../tar/reader.js'
import {BUNDLE_FILES} from './bundle-files.js'
import {describeReadError, type OpenedArchive, type VerificationRun} from './verification-run.js'
import {checkLayout, isManifestOrIndex, type LayoutScan} from './verify-layout.js'

/**
 * Checks the oci-archive; the run's `json` receives the manifests and
 * indexes it read, each verified against its digest, and with `everyJson`
 * every other JSON blob too (configs, signature payloads): a bundle of
 * thousands of images holds only what the graph walk reads.
 */
export async function verifyImagesArchive(run: VerificationRun): Promise<OpenedArchive | undefined> {
  const problems = run.problems('images')
  const name = BUNDLE_FILES.images
  const opened = await run.openParts(name, problems)
  if (!opened) return undefined
  const {reader} = opened
  const scan: LayoutScan = {name, blobs: new Map(), corrupt: new Map(), otherJson: new Set()}
  const {blobs, corrupt, otherJson} = scan
  let layoutOk = false
  let layoutSeen = false
  let complete = false
  const source = Readable.from(reader.chunks(), {objectMode: false})
  try {
    for await (const {header, body} of readTar(source, name)) {
      const path = header.path.replace(/^\.\//, '')
      const label = `${name}: ${header.path}`
      if (header.type === 'directory') {
        if (!['', '.', 'blobs', 'blobs/', 'blobs/sha256', 'blobs/sha256/'].includes(path))
          problems.push(`${label}: unexpected folder`)
        continue
      }
      if (header.type !== 'file') {
        problems.push(`${label}: a ${header.type} entry (an OCI layout holds only files)`)
        continue
      }
      if (path === 'oci-layout' || path === 'index.json') {
        const chunks: Buffer[] = []
        for await (const c of body) chunks.push(c)
        const bytes = Buffer.concat(chunks)
        if (path === 'index.json') scan.indexBytes = bytes
        else {
          try {
            layoutOk =
              (JSON.parse(bytes.toString('utf8')) as {imageLayoutVersion?: string}).imageLayoutVersion === '1.0.0'
          } catch {
            // not JSON: layoutOk stays false and the line below says so
          }
          if (!layoutOk) problems.push(`${label}: not {"imageLayoutVersion":"1.0.0"}`)
          layoutSeen = true
        }
        continue
      }
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(path)
      if (!m) {
        problems.push(`${label}: extra file, not part of an OCI layout`)
        continue
      }
      const digest = `sha256:${m[1]}`
      const hash = createHash('sha256')
      const keep: Buffer[] | undefined = header.size <= MAX_MANIFEST_BYTES ? [] : undefined
      let n = 0
      // A large blob: the collector's limits for streams while it flows (see streamingHeap; the check before an upload).
      const streamed = streamingHeap(header.size, 'upload')
      try {
        for await (const c of body) {
          hash.update(c)
          n += c.length
          keep?.push(c)
        }
      } finally {
        streamed()
      }
      const hex = hash.digest('hex')
      if (hex !== m[1]) {
        // Reported where an image references it (or below, when none does), with both digests.
        corrupt.set(digest, `sha256:${hex}`)
        continue
      }
      if (blobs.has(digest)) problems.push(`${label}: appears twice`)
      blobs.set(digest, n)
      if (keep && keep.length > 0 && keep[0][0] === 0x7b) {
        const bytes = Buffer.concat(keep)
        if (run.everyJson || isManifestOrIndex(bytes)) run.json.set(digest, bytes)
        else otherJson.add(digest)
      }
    }
    complete = true
  } catch (err) {
    problems.push(`${name}: ${describeReadError(err)}`)
  } finally {
    source.destroy()
  }
  await reader.finish().catch((err: Error) => problems.push(`${name}: ${err.message}`))
  run.readAll(reader.digests)
  if (!complete) {
    for (const [digest, got] of corrupt)
      problems.push(`${name}: blobs/sha256/${digest.slice(7)}: corrupt: expected ${digest}, got ${got}`)
    problems.push(`${name}: the image layout was not checked past the damage`)
    return opened.archive
  }
  if (!layoutSeen) problems.push(`${name}: oci-layout is missing`)
  await checkLayout(run, scan)
  for (const d of blobs.keys()) run.carried.digests.add(d)
  return opened.archive
}
