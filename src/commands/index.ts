import type {Command} from '@oclif/core'

import {COMMAND_MODULES} from './modules.js'

/** package.json `oclif.commands` (strategy explicit, identifier COMMANDS): every command class by id. */
export const COMMANDS: Record<string, Command.Class> = Object.fromEntries(
  await Promise.all(Object.entries(COMMAND_MODULES).map(async ([id, load]) => [id, (await load()).default] as const)),
)
