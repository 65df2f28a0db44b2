import type {Hook} from '@oclif/core'

import {closest} from '../lib/closest.js'
import {UsageError} from '../lib/errors.js'
import {errorDocument, errorText} from '../lib/ui/error-report.js'

/** `airlock pul`: a usage error (exit 2) with the command it most likely meant. */
const hook: Hook.CommandNotFound = async function (opts) {
  const bin = opts.config.bin
  const ids = opts.config.commandIDs
  // oclif hands over the command words and the arguments after them as one id
  // (`import:ngnix:./bundle`): the unknown command ends at the first word that
  // no command starts with.
  const words = opts.id.split(':')
  let n = 1
  while (n < words.length && ids.some((id) => id.startsWith(`${words.slice(0, n).join(':')}:`))) n++
  const typed = words.slice(0, n).join(' ')
  const near = closest(
    typed,
    ids.map((id) => id.replaceAll(':', ' ')),
  )
  const err = new UsageError(`${bin} ${typed}: no such command`, {
    suggestions: [...(near ? [`did you mean ${bin} ${near}?`] : []), `${bin} --help lists the commands`],
  })
  process.exitCode = err.exitCode
  process.stderr.write(errorText(err))
  if ([opts.id, ...(opts.argv ?? [])].some((a) => a === '--json' || a.endsWith(':--json'))) {
    process.stdout.write(`${JSON.stringify(errorDocument(err), null, 2)}\n`)
  }
}

export default hook
