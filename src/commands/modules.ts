/**
 * Every command, by id: the one list. oclif finds commands through
 * index.ts, which loads all of these (oclif's explicit strategy: no folder is
 * read); the standalone executable (src/standalone.ts) loads only the one
 * that runs.
 */
export const COMMAND_MODULES = {
  build: () => import('./build.js'),
  bundle: () => import('./bundle.js'),
  'import:nginx': () => import('./import/nginx.js'),
  'import:registry': () => import('./import/registry.js'),
  'import:s3': () => import('./import/s3.js'),
  inspect: () => import('./inspect.js'),
  'inventory:nginx': () => import('./inventory/nginx.js'),
  'inventory:registry': () => import('./inventory/registry.js'),
  'inventory:s3': () => import('./inventory/s3.js'),
  lock: () => import('./lock.js'),
  mirror: () => import('./mirror.js'),
  pull: () => import('./pull.js'),
  serve: () => import('./serve.js'),
  validate: () => import('./validate.js'),
  verify: () => import('./verify.js'),
} as const
