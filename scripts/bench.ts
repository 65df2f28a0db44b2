/**
 * `npm run bench`: runs every benchmark under scripts/bench/ in turn. Each one
 * starts its own local servers, measures airlock and the reference tool in
 * the same run and prints times, ratios and airlock's peak RSS.
 * `npm run bench -- pull-images` runs only the named ones.
 */
import {spawn} from 'node:child_process'
import {readdir} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const all = (await readdir(join(root, 'bench'))).filter((f) => f.endsWith('.ts')).sort()
const chosen = only.length > 0 ? all.filter((f) => only.includes(f.replace(/\.ts$/, ''))) : all
if (chosen.length === 0) {
  process.stderr.write(`no benchmark matches ${only.join(', ')}; have: ${all.map((f) => f.replace(/\.ts$/, '')).join(', ')}\n`)
  process.exit(2)
}

let failed = 0
for (const file of chosen) {
  process.stdout.write(`\n== ${file.replace(/\.ts$/, '')} ==\n`)
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench', file)], {stdio: 'inherit'})
    child.on('exit', (c) => resolve(c ?? 1))
  })
  if (code !== 0) {
    failed++
    process.stdout.write(`${file}: exited ${code}\n`)
  }
}
process.exit(failed > 0 ? 1 : 0)
