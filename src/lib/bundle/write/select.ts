import type {BundleLock, LockFile} from '../../bundle-json.js'
import {FailureError} from '../../errors.js'
import {describeSelection, selectTags} from '../../manifest/tag-selection.js'
import type {Manifest} from '../../manifest/types.js'
import {osRepositoryKey} from '../../store/records.js'

/** binaries live under files/, packages and charts under packages/: a path is unique within its tree. */
function treePathKey(tree: 'files' | 'packages', path: string): string {
  return `${tree}/${path}`
}

function treeOf(f: {kind: LockFile['kind']}): 'files' | 'packages' {
  return f.kind === 'binary' ? 'files' : 'packages'
}

/**
 * The store's records narrowed to what a manifest names: its images (by
 * normalized reference) and files (by mirrored path), under the manifest's
 * name and version. Other content the store holds stays out of the bundle.
 * Anything the manifest names that the store lacks is an error listing each.
 * A tag selection (and a `spec.repositories` entry) is applied to the tags
 * the store holds of its repository, so `bundle --manifest` needs no
 * registry; `build` passes the manifest its pull resolved.
 */
export function selectRecords(records: BundleLock, manifest: Manifest): BundleLock {
  const images = new Map(records.images.map((i) => [i.ref, i]))
  const files = new Map(records.files.map((f) => [treePathKey(treeOf(f), f.path), f]))
  const missing: string[] = []
  const lock: BundleLock = {
    apiVersion: 'airlock/v1',
    name: manifest.name,
    ...(manifest.version === undefined ? {} : {version: manifest.version}),
    images: [],
    files: [],
  }
  const taken = new Set<string>()
  const take = (ref: string) => {
    if (taken.has(ref)) return
    taken.add(ref)
    lock.images.push(images.get(ref)!)
  }
  for (const e of manifest.images) {
    if (images.has(e.name)) take(e.name)
    else missing.push(`image ${e.name}`)
  }
  // Tags the store holds, by repository (`host/path`); pinned references are no tags to select from.
  const tagsOf = new Map<string, string[]>()
  for (const ref of images.keys()) {
    const m = /^(.+):([^:/@]+)$/.exec(ref)
    if (m) tagsOf.set(m[1], [...(tagsOf.get(m[1]) ?? []), m[2]])
  }
  for (const sel of manifest.selections ?? []) {
    const repo = `${sel.registry}/${sel.repository}`
    const picked = selectTags(tagsOf.get(repo) ?? [], sel.tags).selected
    if (picked.length === 0) missing.push(`${sel.field}: no image of ${repo} matching ${describeSelection(sel.tags)}`)
    for (const t of picked) take(`${repo}:${t.tag}`)
  }
  for (const r of manifest.repositories ?? []) {
    const include = r.include === undefined ? undefined : new RegExp(r.include)
    const exclude = r.exclude === undefined ? undefined : new RegExp(r.exclude)
    let n = 0
    for (const [repo, tags] of [...tagsOf].sort(([a], [b]) => a.localeCompare(b))) {
      if (!repo.startsWith(`${r.registry}/`)) continue
      const path = repo.slice(r.registry.length + 1)
      if ((include && !include.test(path)) || exclude?.test(path)) continue
      for (const t of selectTags(tags, r.tags).selected) {
        take(`${repo}:${t.tag}`)
        n++
      }
    }
    if (n === 0) missing.push(`${r.field}: no image of ${r.registry} matching the entry`)
  }
  const seen = new Set<string>()
  for (const e of [...manifest.binaries, ...manifest.packages]) {
    const key = treePathKey(treeOf(e), e.path)
    if (seen.has(key)) continue
    seen.add(key)
    const found = files.get(key)
    if (found) lock.files.push(found)
    else missing.push(`${e.kind} ${e.path}`)
  }
  for (const e of manifest.osPackages ?? []) {
    const key = osRepositoryKey({type: e.type, url: e.url, suites: e.type === 'apt' ? e.suites : undefined})
    const repo = (records.osRepositories ?? []).find((r) => osRepositoryKey(r) === key)
    if (!repo) {
      missing.push(`${e.field}: ${e.type} repository ${e.url}`)
      continue
    }
    const lacking =
      repo.packages.filter((p) => !e.packages.includes(p)).length +
      e.packages.filter((p) => !repo.packages.includes(p)).length
    if (lacking > 0)
      missing.push(
        `${e.field}: ${e.type} repository ${e.url} was pulled for other packages (${repo.packages.join(', ')})`,
      )
    ;(lock.osRepositories ??= []).push(repo)
    for (const p of repo.files) {
      const k = treePathKey('packages', p)
      if (seen.has(k)) continue
      seen.add(k)
      const found = files.get(k)
      if (found) lock.files.push(found)
      else missing.push(`${e.field}: ${p}`)
    }
  }
  if (missing.length > 0) {
    throw new FailureError(
      `the store lacks ${missing.length} entr${missing.length === 1 ? 'y' : 'ies'} of ${manifest.file}; nothing was bundled`,
      {
        details: missing,
        suggestions: [`run \`airlock pull ${manifest.file}\` with the same --store first`],
      },
    )
  }
  return lock
}
