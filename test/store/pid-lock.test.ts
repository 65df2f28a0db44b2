import {spawnSync} from 'node:child_process'
import {readFile, writeFile} from 'node:fs/promises'
import {hostname} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {acquirePidLock} from '../../src/lib/store/pid-lock.js'
import {makeTempDir} from '../helpers/tmp.js'

describe('acquirePidLock', () => {
  it('refuses a second holder while the first lives, and frees on release', async () => {
    const dir = await makeTempDir('airlock-lock-')
    const path = join(dir, '.lock')
    const release = await acquirePidLock(path, 'store X')
    await expect(acquirePidLock(path, 'store X')).rejects.toThrow(
      /store X is in use by another airlock process \(pid \d+/,
    )
    await release()
    const again = await acquirePidLock(path, 'store X')
    await again()
  })

  it('takes over a lock left by a dead process', async () => {
    const dir = await makeTempDir('airlock-lock-')
    const path = join(dir, '.lock')
    // A pid that certainly ended: a child that already exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    await writeFile(path, `${dead} ${hostname()}\n`)
    const release = await acquirePidLock(path, 'store X')
    expect((await readFile(path, 'utf8')).split(' ')[0]).toBe(String(process.pid))
    await release()
  })
})
