/**
 * Every command, by id, for the standalone executable (src/standalone.ts),
 * which has no folder to look in: esbuild bundles them all into its one
 * script, and a command's code runs only when that command does.
 * `node bin/run.js` finds the same commands as files under dist/commands
 * (oclif's pattern strategy, with the manifest `npm run build` writes); a
 * test holds this list to that folder.
 */
export const COMMAND_MODULES = {
  build: () => import('./commands/build.js'),
  bundle: () => import('./commands/bundle.js'),
  'import:nginx': () => import('./commands/import/nginx.js'),
  'import:registry': () => import('./commands/import/registry.js'),
  'import:s3': () => import('./commands/import/s3.js'),
  inspect: () => import('./commands/inspect.js'),
  'inventory:nginx': () => import('./commands/inventory/nginx.js'),
  'inventory:registry': () => import('./commands/inventory/registry.js'),
  'inventory:s3': () => import('./commands/inventory/s3.js'),
  lock: () => import('./commands/lock.js'),
  mirror: () => import('./commands/mirror.js'),
  pull: () => import('./commands/pull.js'),
  serve: () => import('./commands/serve.js'),
  validate: () => import('./commands/validate.js'),
  verify: () => import('./commands/verify.js'),
} as const
