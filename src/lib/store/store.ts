import {createHash} from 'node:crypto'
import {mkdir, readFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import {digestHex} from '../content/digest.js'
import {writeFileAtomic} from './atomic.js'
import {acquirePidLock} from './pid-lock.js'

export const DEFAULT_STORE = './airlock-store'

/** What a partial download will become: an image blob or a file (binary, chart, package); or a manifest staged by a pull's layout. */
export type PartialKind = 'blob' | 'file' | 'manifest'

/**
 * The store's folders. `images/` is an OCI image layout; `files/` and
 * `packages/` hold verified files at their mirrored paths; `.tmp/` holds
 * partial downloads, which never appear under a final name.
 */
export class Store {
  readonly root: string
  readonly images: string
  readonly files: string
  readonly packages: string
  readonly tmp: string

  constructor(root: string = DEFAULT_STORE) {
    this.root = resolve(root)
    this.images = join(this.root, 'images')
    this.files = join(this.root, 'files')
    this.packages = join(this.root, 'packages')
    this.tmp = join(this.root, '.tmp')
  }

  blobPath(digest: string): string {
    return join(this.images, 'blobs', 'sha256', digestHex(digest))
  }

  /**
   * Where a partial download of content with this digest waits to be resumed.
   * Image blobs and files have their own names: a pull may fetch the same
   * bytes as both at once, and two writers must never share a partial file;
   * `source` (a file's URL) gives each URL its own.
   */
  partialPath(digest: string, kind: PartialKind = 'blob', source?: string): string {
    // Files are fetched per URL: two URLs declaring one sha256 download side by side.
    const from = source === undefined ? '' : `-${createHash('sha256').update(source).digest('hex').slice(0, 16)}`
    return join(this.tmp, 'partial', `${kind}-${digestHex(digest)}${from}.part`)
  }

  get indexPath(): string {
    return join(this.images, 'index.json')
  }

  /** Create the folders and an empty OCI layout if missing. */
  async init(): Promise<void> {
    await mkdir(join(this.images, 'blobs', 'sha256'), {recursive: true})
    await mkdir(this.files, {recursive: true})
    await mkdir(this.packages, {recursive: true})
    await mkdir(join(this.tmp, 'partial'), {recursive: true})
    const layout = join(this.images, 'oci-layout')
    if (!(await exists(layout))) await writeFileAtomic(layout, '{"imageLayoutVersion":"1.0.0"}')
    if (!(await exists(this.indexPath))) {
      await writeFileAtomic(
        this.indexPath,
        `${JSON.stringify({schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: []}, null, 2)}\n`,
      )
    }
  }

  /** Exclusive use of the store for one writer (pull). */
  async lock(): Promise<() => Promise<void>> {
    await mkdir(this.root, {recursive: true})
    return acquirePidLock(join(this.root, '.lock'), `store ${this.root}`)
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await readFile(p)
    return true
  } catch {
    return false
  }
}
