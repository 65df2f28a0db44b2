// `node --import` this file (NODE_OPTIONS) to have the process append the URL
// of every module it resolves through `import` to the file named by
// AIRLOCK_RECORD_IMPORTS, one a line. Node runs module hooks on a thread of
// their own, which loads this same file: only the main thread registers it.
import {appendFileSync} from 'node:fs'
import {register} from 'node:module'
import {isMainThread} from 'node:worker_threads'

if (isMainThread) register(import.meta.url)

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  if (process.env.AIRLOCK_RECORD_IMPORTS) appendFileSync(process.env.AIRLOCK_RECORD_IMPORTS, `${resolved.url}\n`)
  return resolved
}
