#!/usr/bin/env node
import {execute, settings} from '@oclif/core'

// This runs the compiled dist/, always. Under NODE_ENV=development or test
// oclif would otherwise look for the TypeScript sources and load a
// transpiler (tsx, where installed) into every run: twice the memory, for
// nothing. bin/dev.js runs the sources.
settings.enableAutoTranspile = false

await execute({dir: import.meta.url})
