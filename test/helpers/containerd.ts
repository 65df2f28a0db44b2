import {execFile, spawn} from 'node:child_process'
import {closeSync, openSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {stopChild, trackChild} from './cleanup.js'
import {waitFor} from './http.js'
import {makeTempDir} from './tmp.js'

const run = promisify(execFile)

export interface ContainerdServer {
  /** The gRPC socket `ctr --address` takes. */
  socket: string
  logFile: string
  /** Run `ctr` against this daemon in its own namespace; rejects with ctr's stderr on failure. */
  ctr(args: string[]): Promise<{stdout: string; stderr: string}>
  stop(): Promise<void>
}

/**
 * Debian's containerd in the foreground, root, state and socket in its own
 * temp dir (no systemd), CRI off, and the `native` snapshotter used for
 * unpacking so it works where overlayfs cannot be mounted.
 */
export async function startContainerd(): Promise<ContainerdServer> {
  const dir = await makeTempDir('airlock-ctrd-')
  const socket = join(dir, 'c.sock')
  const logFile = join(dir, 'containerd.log')
  await mkdir(join(dir, 'root'))
  await mkdir(join(dir, 'state'))
  const config = join(dir, 'config.toml')
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${socket}.ttrpc"`,
      '[debug]',
      `  address = "${join(dir, 'debug.sock')}"`,
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  )
  const log = openSync(logFile, 'a')
  const child = spawn('containerd', ['--config', config], {detached: true, stdio: ['ignore', log, log]})
  closeSync(log)
  trackChild(child)
  const ctr = (args: string[]) =>
    run('ctr', ['--address', socket, '--namespace', 'airlock-test', ...args], {maxBuffer: 16 << 20}).catch(
      (err: {stderr?: string; message: string}) => {
        throw new Error(`ctr ${args.join(' ')}: ${err.stderr || err.message}`)
      },
    )
  await waitFor(
    'containerd',
    async () => (await run('ctr', ['--address', socket, 'version'])).stdout.includes('Server'),
    30_000,
    () => readFile(logFile, 'utf8'),
  )
  return {socket, logFile, ctr, stop: () => stopChild(child)}
}
