/**
 * rpm entries for the framework (../plan.ts): per entry, `repodata/repomd.xml`
 * (verified with gpgKey against `repomd.xml.asc` when the repository has
 * one), every metadata file it lists by its checksum (the mirror is the
 * upstream's repodata byte for byte, so dnf on a node finds whatever it asks
 * for), then the closure of all entries together (resolve.ts) and each
 * package by its checksum and, before it becomes visible, its OpenPGP header
 * signature with gpgKey (package-signature.ts).
 */
import {createReadStream} from 'node:fs'

import {relativePathProblem} from '../../content/paths.js'
import {FailureError, IntegrityError} from '../../errors.js'
import type {RpmOsPackageEntry} from '../../manifest/types.js'
import {readPublicKeys, verifyDetached} from '../openpgp.js'
import type {OsFetchContext, OsRepositoryPlan, PlannedFile} from '../plan.js'
import {decompressed} from './decompress.js'
import {verifyRpmFile} from './package-signature.js'
import {readFilelists, readPrimary} from './primary.js'
import {parseRepomd, type Repomd, repomdData} from './repomd.js'
import {ClosureError, nevraOf, resolveClosure, type RpmCandidate} from './resolve.js'

/** repomd.xml of a large distribution repository is a few KiB; this is far above. */
const MAX_REPOMD = 4 * 1024 * 1024

function fileOf(entry: RpmOsPackageEntry, location: string, what: string): {url: string; path: string} {
  const why = relativePathProblem(location)
  if (why)
    throw new FailureError(
      `${entry.field}: ${what} ${JSON.stringify(location)} is not a path inside the repository (${why})`,
    )
  return {url: `${entry.url}/${location}`, path: `${entry.path}/${location}`}
}

function sha256Of(checksum: {type: string; value: string}, what: string): string {
  if (checksum.type !== 'sha256')
    throw new FailureError(`${what}: checksum type ${checksum.type} is not supported (sha256 only)`)
  return checksum.value.toLowerCase()
}

interface ReadRepo {
  entry: RpmOsPackageEntry
  repomd: Repomd
  metadata: PlannedFile[]
  /** Store paths of the fetched metadata by type. */
  stored: Map<string, string>
}

async function readRepository(entry: RpmOsPackageEntry, ctx: OsFetchContext): Promise<ReadRepo> {
  const keys = await readPublicKeys(entry.gpgKey, `${entry.field}.gpgKey`)
  const base = `${entry.url}/repodata/repomd.xml`
  const asc = await ctx.fetchBytes({
    url: `${base}.asc`,
    label: `${entry.url} repomd.xml.asc`,
    maxBytes: 64 * 1024,
    optional: true,
  })
  let repomd: Repomd | undefined
  const signed = await ctx.fetchSigned({
    url: base,
    path: `${entry.path}/repodata/repomd.xml`,
    label: `${entry.url} repomd.xml`,
    maxBytes: MAX_REPOMD,
    async verify(bytes) {
      if (asc) await verifyDetached(bytes, asc, keys, `${base} (with ${base}.asc)`)
      try {
        repomd = await parseRepomd(bytes.toString('utf8'))
      } catch (e) {
        throw new IntegrityError(base, 'a repomd.xml', (e as Error).message)
      }
    },
  })
  if (!signed || !repomd) throw new FailureError(`${base}: not found`)
  const metadata: PlannedFile[] = [
    {kind: 'os-metadata', url: signed.url, path: signed.path, size: signed.size, sha256: signed.sha256},
  ]
  if (asc) {
    const ascFile = await ctx.fetchSigned({
      url: `${base}.asc`,
      path: `${entry.path}/repodata/repomd.xml.asc`,
      label: `${entry.url} repomd.xml.asc`,
      maxBytes: 64 * 1024,
      // The signature just checked against repomd.xml; the same bytes again.
      verify: async (bytes) => {
        if (!bytes.equals(asc))
          throw new IntegrityError(`${base}.asc`, 'the signature verified a moment ago', 'other bytes')
      },
    })
    if (ascFile)
      metadata.push({
        kind: 'os-metadata',
        url: ascFile.url,
        path: ascFile.path,
        size: ascFile.size,
        sha256: ascFile.sha256,
      })
  }
  if (!repomdData(repomd, 'primary')) throw new FailureError(`${base}: lists no primary metadata`)
  const stored = new Map<string, string>()
  await Promise.all(
    repomd.data.map(async (d) => {
      const {url, path} = fileOf(entry, d.location, 'repomd.xml location')
      if (d.size === undefined) throw new FailureError(`${base}: ${d.type} has no size`)
      const file = {url, path, size: d.size, sha256: sha256Of(d.checksum, `${base}: ${d.type}`)}
      stored.set(d.type, await ctx.fetchVerified(file, `${entry.url} ${d.location}`))
      metadata.push({kind: 'os-metadata', ...file})
    }),
  )
  return {entry, repomd, metadata, stored}
}

/** Every `type: rpm` entry, resolved together. */
export async function resolveRpm(entries: RpmOsPackageEntry[], ctx: OsFetchContext): Promise<OsRepositoryPlan[]> {
  const repos = await Promise.all(entries.map((e) => readRepository(e, ctx)))
  const packages: RpmCandidate[] = []
  const byId = new Map<string, RpmCandidate[]>()
  for (const [i, r] of repos.entries()) {
    const arches = new Set(r.entry.architectures)
    const primary = r.stored.get('primary')!
    const location = repomdData(r.repomd, 'primary')!.location
    try {
      await readPrimary(decompressed(createReadStream(primary), location), (p) => {
        if (!arches.has(p.arch)) return
        const c = {...p, repo: i}
        packages.push(c)
        byId.set(`${i}\0${p.checksum.value}`, [c])
      })
    } catch (e) {
      throw new FailureError(`${r.entry.url}/${location}: ${(e as Error).message}`)
    }
  }
  let closure: RpmCandidate[]
  try {
    closure = await resolveClosure({
      packages,
      architectures: entries.map((e) => e.architectures),
      requested: entries.map((e) => e.packages),
      async loadFiles(paths) {
        const found = new Map<string, RpmCandidate[]>()
        for (const [i, r] of repos.entries()) {
          const data = repomdData(r.repomd, 'filelists')
          const stored = r.stored.get('filelists')
          if (!data || !stored) continue
          for (const [path, ids] of await readFilelists(decompressed(createReadStream(stored), data.location), paths)) {
            const list = ids.flatMap((id) => byId.get(`${i}\0${id}`) ?? [])
            found.set(path, [...(found.get(path) ?? []), ...list])
          }
        }
        return found
      },
    })
  } catch (e) {
    if (e instanceof ClosureError) {
      const names = entries.map((en) => en.field)
      throw new FailureError(`${names.join(', ')}: ${e.message}`, {
        details: e.problems.slice(1),
        suggestions: e.suggestions,
      })
    }
    throw e
  }
  const keysOf = new Map<number, ReturnType<typeof readPublicKeys>>()
  return repos.map((r, i) => ({
    entry: r.entry,
    repository: {
      type: 'rpm',
      url: r.entry.url,
      path: r.entry.path,
      architectures: r.entry.architectures,
      packages: r.entry.packages,
    },
    metadata: r.metadata,
    packages: closure
      .filter((p) => p.repo === i)
      .map((p): PlannedFile => {
        if (p.locationBase)
          throw new FailureError(
            `${r.entry.field}: ${nevraOf(p)} lives under ${p.locationBase} (xml:base), outside the repository; not supported`,
          )
        const {url, path} = fileOf(r.entry, p.location, `package ${nevraOf(p)} location`)
        return {
          kind: 'os-package',
          url,
          path,
          size: p.size,
          sha256: sha256Of(p.checksum, nevraOf(p)),
          os: {
            name: p.name,
            version: `${p.evr.epoch ? `${p.evr.epoch}:` : ''}${p.evr.version}-${p.evr.release}`,
            architecture: p.arch,
          },
          // Before the file gets its name: its header signature with gpgKey, and its payload digest.
          async check(file) {
            let keys = keysOf.get(i)
            if (!keys) keysOf.set(i, (keys = readPublicKeys(r.entry.gpgKey, `${r.entry.field}.gpgKey`)))
            await verifyRpmFile(file, await keys, url)
          },
        }
      }),
  }))
}
