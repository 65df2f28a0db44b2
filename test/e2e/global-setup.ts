import {ensureExecutable} from '../helpers/executable.js'

/** Once per run, before any e2e file: the standalone executable that `bundle` and `build` carry and the seed-node test runs. */
export default async function setup(): Promise<void> {
  await ensureExecutable()
}
