import {readdir} from 'node:fs/promises'
import {join, relative} from 'node:path'

import {describe, expect, it} from 'vitest'

import {COMMAND_MODULES} from '../src/command-modules.js'
import {repoRoot} from './helpers/cli.js'

/** Command files under src/commands, as oclif ids (import/nginx.ts -> import:nginx). */
async function commandFiles(dir = join(repoRoot, 'src', 'commands')): Promise<string[]> {
  const ids: string[] = []
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true})) {
    if (!e.isFile() || !e.name.endsWith('.ts')) continue
    ids.push(relative(dir, join(e.parentPath, e.name)).replace(/\.ts$/, '').split('/').join(':'))
  }
  return ids.sort()
}

describe("the standalone executable's command list", () => {
  it('names every command file under src/commands, so none is missing from the CLI or the standalone executable', async () => {
    expect(Object.keys(COMMAND_MODULES).sort()).toEqual(await commandFiles())
  })

  it('each entry loads a command class', async () => {
    for (const [id, load] of Object.entries(COMMAND_MODULES)) {
      const cmd = (await load()).default as {run?: unknown; description?: string}
      expect(typeof cmd.run, id).toBe('function')
      expect(cmd.description, id).toBeTruthy()
    }
  })
})
