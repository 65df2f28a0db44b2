import {readFileSync, type Stats, statSync} from 'node:fs'
import {readdir, readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

import type {BundleLock, LockFile, LockReferrer} from '../../bundle-json.js'
import type {RepoIndex} from '../../charts/repo-index.js'
import type {Descriptor, ImageIndex} from '../../content/descriptor.js'
import {isDigest, sha256Digest} from '../../content/digest.js'
import {MAX_MANIFEST_BYTES} from '../../defaults.js'
import {parseLayoutIndex} from '../../graph/parse.js'
import {isManifestEdge} from '../../graph/successors.js'
import {type GraphVisitor, walkGraph} from '../../graph/walk.js'
import {REF_NAME_ANNOTATION} from '../../oci/layout.js'
import type {Store} from '../../store/store.js'
import {normalMode, treeOrder} from '../../tar/writer.js'
import {type BaseContent, fileKey} from '../format/base.js'
import {TOP_FOLDERS} from '../format/bundle-files.js'

/** One entry of a file archive: a folder, inline bytes, or a store file streamed and checked. */
export interface ArchiveItem {
  path: string
  type: 'file' | 'directory'
  mode: number
  size: number
  /** Absolute path of the store file whose bytes go in. */
  source?: string
  /** Small generated content (a chart index narrowed to the bundle's charts). */
  data?: Buffer
  /** The hex sha256 the bytes must have; absent for files whose digest the bundle computes (the chart index). */
  sha256?: string
  /** Named in errors. */
  label: string
  /** Called with the hex sha256 of the bytes archived (for entries the lock learns from the bundle). */
  onDigest?: (hex: string) => void
}

/** What offline-images.tar carries: the roots to copy into it, and what a delta leaves out. */
export interface ImagesPlan {
  /** Each image's root (its store index.json entry, with the record's media type), in the lock's order. */
  images: {ref: string; desc: Descriptor}[]
  /** Each referrer once, in the order the lock lists them. */
  referrers: LockReferrer[]
  /** Where the walk first met each digest of `lock.blobs` (an image and the way down to it), to name it in errors. */
  labels: Map<string, string>
  /** Digests a base holds, and everything under a manifest it holds: left out of the archive. */
  fromBase: Set<string>
}

export interface BundlePlan {
  lock: BundleLock
  files: ArchiveItem[]
  packages: ArchiveItem[]
  images: ImagesPlan
  /** Every way the store differs from its records; the bundle is refused when there is any. */
  problems: string[]
  /** Files and blobs in the store that no record names (left out). */
  strays: number
}

/** The chart repository index pull writes beside the charts; bundled with them so the imported folder is a chart repo. */
export const CHART_INDEX = 'charts/index.yaml'

/**
 * What goes into each archive, checked against the store before a byte is
 * written: the file archives' entries in order, every recorded file there
 * with its recorded size; the images and referrers to copy into
 * offline-images.tar, every manifest, config and layer present.
 */
export async function planBundle(store: Store, records: BundleLock, base?: BaseContent): Promise<BundlePlan> {
  const problems: string[] = []
  const lock: BundleLock = {
    apiVersion: 'airlock/v1',
    name: records.name,
    ...(records.version === undefined ? {} : {version: records.version}),
    images: [...records.images].sort((a, b) => cmp(a.ref, b.ref)),
    files: records.files.map((f) => ({...f})).sort((a, b) => cmp(groupOf(a), groupOf(b)) || cmp(a.path, b.path)),
    ...(records.osRepositories && records.osRepositories.length > 0 ? {osRepositories: records.osRepositories} : {}),
  }
  // A delta: what a base has stays out of the archives, and the lock says so entry by entry.
  if (base) {
    lock.base = base.bases.map((b) => b.entry)
    for (const f of lock.files) if (f.path !== CHART_INDEX && base.files.has(fileKey(f))) f.fromBase = true
  }

  const fileItems = async (root: string, top: string, list: LockFile[]): Promise<ArchiveItem[]> => {
    const byPath = new Map(list.map((f) => [f.path, f]))
    const items: ArchiveItem[] = [{path: `${top}/`, type: 'directory', mode: 0o755, size: 0, label: top}]
    for (const e of treeOrder(list.map((f) => f.path))) {
      if (e.type === 'directory') {
        items.push({path: `${top}/${e.path}`, type: 'directory', mode: 0o755, size: 0, label: e.path})
        continue
      }
      const f = byPath.get(e.path)!
      const source = join(root, ...f.path.split('/'))
      // Synchronously, as for blobs below: thousands of stats through the thread pool cost more than the calls.
      const st = statOrUndefined(source)
      const where = `${root}/${f.path}`
      if (!st) problems.push(`${where}: missing from the store (recorded ${f.size} bytes)`)
      else if (!st.isFile()) problems.push(`${where}: not a regular file`)
      else if (st.size !== f.size) problems.push(`${where}: ${st.size} bytes in the store, recorded ${f.size}`)
      const item: ArchiveItem = {
        path: `${top}/${f.path}`,
        type: 'file',
        mode: normalMode('file', st?.mode),
        size: f.size,
        source,
        sha256: f.sha256,
        label: where,
      }
      if (f.path === CHART_INDEX && f.url === '') {
        // Generated by pull, not downloaded: its digest is taken as it is archived.
        item.sha256 = undefined
        item.size = st?.size ?? 0
        item.onDigest = (hex) => {
          f.sha256 = hex
          f.size = item.size
        }
      }
      items.push(item)
    }
    return items
  }

  const binaries = lock.files.filter((f) => f.kind === 'binary')
  const packages = lock.files.filter((f) => f.kind !== 'binary')
  // The chart index is not a recorded download; it joins the lock so importers and verify know it.
  if (packages.some((f) => f.kind === 'chart') && !packages.some((f) => f.path === CHART_INDEX)) {
    const st = await stat(join(store.packages, 'charts', 'index.yaml')).catch(() => undefined)
    if (st?.isFile()) {
      const entry: LockFile = {kind: 'chart', url: '', path: CHART_INDEX, size: st.size, sha256: ''}
      packages.push(entry)
      lock.files.push(entry)
      lock.files.sort((a, b) => cmp(groupOf(a), groupOf(b)) || cmp(a.path, b.path))
    } else {
      problems.push(`${store.packages}/${CHART_INDEX}: missing (the store has charts but no chart index)`)
    }
  }

  const carried = (list: LockFile[]) => list.filter((f) => !f.fromBase)
  const files = await fileItems(store.files, TOP_FOLDERS.files, carried(binaries))
  const pkgs = await fileItems(store.packages, TOP_FOLDERS.packages, carried(packages))
  await narrowChartIndex(store, packages, pkgs)
  const images = await planImages(store, lock, problems, base?.digests)
  const strays = await countStrays(store, lock)
  return {lock, files, packages: pkgs, images, problems, strays}
}

/**
 * The store's chart index lists every chart ever pulled into it; a bundle
 * narrowed to a manifest carries an index of its own charts only, so a
 * chart repository built from it lists nothing it lacks.
 */
async function narrowChartIndex(store: Store, packages: LockFile[], items: ArchiveItem[]): Promise<void> {
  const item = items.find((i) => i.path === `${TOP_FOLDERS.packages}/${CHART_INDEX}`)
  if (!item || item.sha256 !== undefined) return
  // Loaded here: the YAML library is for stores with charts only, not for every bundle's start.
  const [{readStoreIndex}, {stringify}] = await Promise.all([import('../../charts/store-index.js'), import('yaml')])
  const index = await readStoreIndex(store)
  if (!index) return
  const bundled = new Set(packages.filter((f) => f.kind === 'chart').map((f) => f.path))
  let dropped = false
  const entries: RepoIndex['entries'] = {}
  for (const [name, list] of Object.entries(index.entries)) {
    const kept = list.filter((e) => typeof e.urls?.[0] === 'string' && bundled.has(`charts/${e.urls[0]}`))
    if (kept.length < list.length) dropped = true
    if (kept.length > 0) entries[name] = kept
  }
  if (!dropped) return
  item.data = Buffer.from(stringify({...index, entries}, {lineWidth: 0}))
  item.source = undefined
  item.size = item.data.length
}

/**
 * What offline-images.tar carries, and `lock.blobs`: every digest of the
 * images' graphs, each blob checked to be in the store with its size. In a delta, a digest a base lists is left out, and so is
 * everything under a manifest a base lists (a base that holds a manifest
 * holds what it points to: registries refuse a manifest without its blobs,
 * and bundles and inventories list whole graphs).
 */
async function planImages(
  store: Store,
  lock: BundleLock,
  problems: string[],
  baseDigests?: Set<string>,
): Promise<ImagesPlan> {
  let index: ImageIndex
  try {
    index = parseLayoutIndex(await readFile(store.indexPath))
  } catch (err) {
    if (lock.images.length > 0 || (err as NodeJS.ErrnoException).code !== 'ENOENT') {
      problems.push(
        `${store.indexPath}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `not a valid OCI index: ${(err as Error).message}`}`,
      )
    }
    index = {schemaVersion: 2, manifests: []}
  }

  const blobs = new Map<string, number>()
  const mediaTypes = new Map<string, string>()
  const labels = new Map<string, string>()
  /** What each manifest or index points to, for marking everything under a manifest a base holds. */
  const children = new Map<string, string[]>()
  const addBlob = (d: Descriptor, of: string): boolean => {
    if (!isDigest(d.digest)) {
      problems.push(`${of}: reference ${d.digest} is not a sha256 digest`)
      return false
    }
    const prev = blobs.get(d.digest)
    if (prev !== undefined && prev !== d.size)
      problems.push(`${of}: ${d.digest} is referenced with sizes ${prev} and ${d.size}`)
    blobs.set(d.digest, d.size)
    if (prev === undefined) {
      mediaTypes.set(d.digest, d.mediaType ?? '')
      labels.set(d.digest, of)
    }
    return prev === undefined
  }
  const visitor: GraphVisitor<string> = {
    visit: async (d, of, edge) => {
      if (edge && !isManifestEdge(edge)) {
        // Foreign layers stay where their URLs point; pull never stores them, but one the store has is bundled.
        if (edge.optional && !(await stat(store.blobPath(d.digest)).catch(() => undefined))) return false
        addBlob(d, of)
        return false
      }
      if (!addBlob(d, of)) return false
      if (d.size > MAX_MANIFEST_BYTES) {
        problems.push(`${of}: manifest ${d.digest} of ${d.size} bytes is too large`)
        return false
      }
      return true
    },
    bytes: async (d) => {
      const bytes = readOrUndefined(store.blobPath(d.digest))
      // Missing: reported as a missing blob below. Mismatched: reported when the blob is archived, with the store path.
      return bytes && sha256Digest(bytes) === d.digest ? bytes : undefined
    },
    invalid: (d, of, err) => {
      problems.push(
        err.reason === 'json'
          ? `${of}: manifest ${d.digest} is not JSON`
          : `${of}: ${d.digest} has media type ${err.mediaType ?? '(none)'}, not an image manifest or index`,
      )
    },
    // What a manifest points to (its subject aside: a referrer does not hold what it refers to); a delta needs it only.
    node: (d, {edges}) =>
      void (
        baseDigests &&
        children.set(
          d.digest,
          edges.filter((e) => e.role !== 'subject').map((e) => e.desc.digest),
        )
      ),
    label: (of, edge, parent) =>
      edge.role === 'manifest' ? `${of} (index ${parent.digest.slice(0, 19)})` : `${of} ${edge.role}`,
  }

  const byRef = new Map<string, Descriptor[]>()
  for (const m of index.manifests) {
    const ref = m.annotations?.[REF_NAME_ANNOTATION]
    if (ref !== undefined) byRef.set(ref, [...(byRef.get(ref) ?? []), m])
  }
  const images: ImagesPlan['images'] = []
  for (const img of lock.images) {
    const matches = byRef.get(img.ref) ?? []
    const entry = matches.find((m) => m.digest === img.digest)
    if (!entry) {
      problems.push(
        matches.length === 0
          ? `${img.ref}: not in ${store.indexPath}`
          : `${img.ref}: recorded as ${img.digest}, but ${store.indexPath} has ${matches.map((m) => m.digest).join(', ')}`,
      )
      continue
    }
    images.push({ref: img.ref, desc: {...entry, mediaType: img.mediaType}})
    await walkGraph(entry, img.ref, visitor)
  }
  // Each referrer (a signature, an SBOM) with its own index.json entry, walked like an image.
  const referrers = new Map<string, LockReferrer>()
  for (const img of lock.images) {
    for (const r of img.referrers ?? []) {
      if (referrers.has(r.digest)) continue
      referrers.set(r.digest, r)
      await walkGraph(
        {mediaType: r.mediaType, digest: r.digest, size: r.size},
        `${img.ref} referrer ${r.digest}`,
        visitor,
      )
    }
  }

  const fromBase = new Set<string>()
  const mark = (digest: string): void => {
    if (fromBase.has(digest)) return
    fromBase.add(digest)
    for (const c of children.get(digest) ?? []) mark(c)
  }
  if (baseDigests) for (const digest of blobs.keys()) if (baseDigests.has(digest)) mark(digest)
  lock.blobs = [...blobs]
    .sort((a, b) => cmp(a[0], b[0]))
    .map(([digest, size]) => ({
      digest,
      mediaType: mediaTypes.get(digest)!,
      size,
      ...(fromBase.has(digest) ? {fromBase: true as const} : {}),
    }))

  // One stat per blob, synchronously: thousands of them through the thread pool cost more than the calls.
  for (const [digest, size] of [...blobs].sort((a, b) => cmp(a[0], b[0]))) {
    if (fromBase.has(digest)) continue
    const source = store.blobPath(digest)
    const st = statOrUndefined(source)
    if (!st) problems.push(`${source}: blob missing from the store`)
    else if (st.size !== size) problems.push(`${source}: ${st.size} bytes in the store, its descriptor says ${size}`)
  }
  return {images, referrers: [...referrers.values()], labels, fromBase}
}

/** Files and blobs in the store that no record reaches: left out of the bundle, counted for a warning. */
async function countStrays(store: Store, lock: BundleLock): Promise<number> {
  const wanted = new Set<string>()
  for (const f of lock.files) wanted.add(join(f.kind === 'binary' ? store.files : store.packages, ...f.path.split('/')))
  // What a delta leaves out is still content of the bundle, not a stray.
  for (const b of lock.blobs ?? []) wanted.add(store.blobPath(b.digest))
  let n = 0
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, {withFileTypes: true}).catch(() => [])
    for (const e of entries) {
      const p = join(dir, e.name)
      if (e.isDirectory()) await walk(p)
      else if (!wanted.has(p)) n++
    }
  }
  await walk(store.files)
  await walk(store.packages)
  await walk(join(store.images, 'blobs', 'sha256'))
  return n
}

/** A manifest's bytes, read synchronously (small, and thousands of them in a large store), or undefined. */
function readOrUndefined(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch {
    return undefined
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch {
    return undefined
  }
}

function groupOf(f: LockFile): string {
  return f.kind === 'binary' ? 'files' : 'packages'
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
