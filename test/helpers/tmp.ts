import {mkdtemp} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {trackDir} from './cleanup.js'

/** A fresh directory under os.tmpdir(), removed when the test process exits. */
export async function makeTempDir(prefix = 'airlock-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  trackDir(dir)
  return dir
}
