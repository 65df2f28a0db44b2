/**
 * oclif's manifest of every command: ids, flags, args and help texts, and
 * the file each command is in. `npm run build` writes it to
 * oclif.manifest.json (shipped in the package), so that `airlock --version`,
 * `--help` and a command's run read the list from there and load only the
 * one command that runs (oclif's pattern strategy), never every command
 * module. `npm run build:bin` embeds the same manifest in the standalone
 * executable, which has no files to make it from.
 */
import {rename, rm, writeFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {Config, type Interfaces, settings} from '@oclif/core'

const repo = resolve(fileURLToPath(new URL('..', import.meta.url)))
export const manifestPath = join(repo, 'oclif.manifest.json')

/** The manifest as oclif makes it from dist/commands (or reads it from oclif.manifest.json, once that is written). */
export async function commandManifest(): Promise<Interfaces.Manifest> {
  // The compiled files, also when NODE_ENV is test or development (then oclif would look for the sources in src/ instead).
  settings.enableAutoTranspile = false
  const config = await Config.load(repo)
  // oclif keeps the manifest it made on its Plugin class, not on the Plugin interface.
  const manifest = (config.getPluginsList().find((p) => p.isRoot) as {manifest?: Interfaces.Manifest} | undefined)
    ?.manifest
  if (!manifest || Object.keys(manifest.commands).length === 0)
    throw new Error('oclif found no commands: run `npm run build` first')
  return manifest
}

/** Makes the manifest anew from dist/commands and writes it, whole or not at all. */
export async function writeCommandManifest(): Promise<void> {
  // oclif would read an earlier manifest rather than look at dist/commands.
  await rm(manifestPath, {force: true})
  const manifest = await commandManifest()
  await writeFile(`${manifestPath}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`)
  await rename(`${manifestPath}.tmp`, manifestPath)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await writeCommandManifest()
  } catch (err) {
    process.stderr.write(`oclif-manifest: ${(err as Error).message}\n`)
    process.exit(1)
  }
}
