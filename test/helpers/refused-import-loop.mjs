// `node refused-import-loop.mjs BUNDLE ROOT RUNS PAUSE_MS`: runs the built
// `importNginx` (dist/) RUNS times in this one process, each into an empty
// ROOT, and prints one JSON line: how many runs were refused with exit code 2
// and how many left ROOT untouched. A refused import that leaves work pending
// ends this process early (exit 13, the code of an unsettled top-level
// await), so the caller sees that exit code instead of the line.
//
// The race it makes likely: WriteThread.stop() is wrapped to hold this thread
// for PAUSE_MS first, as a busy machine would, so that the write thread
// finishes what it was handed and its last report is still waiting when the
// refusal stops it.
import {readdir, rm} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const [bundle, root, runsArg, pauseArg] = process.argv.slice(2)
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'lib')
const {WriteThread} = await import(join(dist, 'store', 'write-thread.js'))
const {importNginx} = await import(join(dist, 'importers', 'nginx.js'))

const pause = Number(pauseArg)
const stop = WriteThread.prototype.stop
WriteThread.prototype.stop = function () {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause)
  return stop.call(this)
}

const runs = Number(runsArg)
let refused = 0
let untouched = 0
const codes = {}
for (let i = 0; i < runs; i++) {
  await rm(root, {recursive: true, force: true})
  const err = await importNginx(bundle, {root}).then(
    () => undefined,
    (e) => e,
  )
  const code = err?.exitCode ?? 0
  codes[code] = (codes[code] ?? 0) + 1
  if (code === 2) refused++
  const left = await readdir(root, {recursive: true}).catch(() => [])
  if (left.length === 0) untouched++
  else process.stderr.write(`run ${i + 1}: left ${left.slice(0, 3).join(', ')}\n`)
}
process.stdout.write(`${JSON.stringify({runs, refused, untouched, codes})}\n`)
