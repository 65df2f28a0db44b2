import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {lstat} from 'node:fs/promises'

import {plural} from '../../ui/table.js'
import type {VerificationRun} from './verification-run.js'

/** Manifests and configs are small JSON (up to MAX_MANIFEST_BYTES); anything bigger is a layer and is only hashed. */
const READ_CHUNK = 1 << 20

/** Each file of bundle.json `tools` (the standalone executables, import.sh): there, a regular file, with its size and sha256. */
export async function verifyTools(run: VerificationRun): Promise<void> {
  const problems = run.problems('tools')
  // An executable a delta leaves to its base is not in this folder: import.sh finds it there by its sha256.
  const tools = (run.bundle.lock.tools ?? []).filter((t) => !t.fromBase)
  if (tools.length === 0) return
  const task = run.progress.task(
    'verify tools',
    tools.reduce((n, t) => n + t.size, 0),
  )
  for (const t of tools) {
    const file = run.bundle.path(t.path)
    const st = await lstat(file).catch(() => undefined)
    if (!st) {
      problems.push(`${t.path}: missing (bundle.json lists it under tools)`)
      continue
    }
    if (!st.isFile()) {
      problems.push(`${t.path}: not a regular file`)
      continue
    }
    const hash = createHash('sha256')
    let n = 0
    try {
      for await (const chunk of createReadStream(file, {highWaterMark: READ_CHUNK}) as AsyncIterable<Buffer>) {
        hash.update(chunk)
        n += chunk.length
        task.advance(chunk.length)
      }
    } catch (err) {
      problems.push(`${t.path}: ${(err as Error).message}`)
      continue
    }
    const hex = hash.digest('hex')
    run.actual.set(t.path, hex)
    if (n !== t.size) problems.push(`${t.path}: ${n} bytes, bundle.json says ${t.size}`)
    if (hex !== t.sha256) problems.push(`${t.path}: sha256 ${hex}, bundle.json says ${t.sha256}`)
  }
  task.done(plural(tools.length, 'file'))
}
