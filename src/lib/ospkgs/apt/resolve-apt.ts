import {relativePathProblem} from '../../content/paths.js'
import {FailureError, IntegrityError} from '../../errors.js'
import {redactUrl} from '../../fetch/http.js'
import type {AptOsPackageEntry} from '../../manifest/types.js'
import {readPublicKeys, verifyClearSigned, verifyDetached} from '../openpgp.js'
import type {OsFetchContext, OsRepositoryPlan, PlannedFile} from '../plan.js'
import {aptClosure, AptResolveError, AptUniverse} from './closure.js'
import {INDEX_COMPRESSIONS, openIndex, readPackages} from './packages-index.js'
import {parseRelease} from './release.js'

/** InRelease, Release and Release.gpg: small documents; a larger answer is a wrong URL. */
const MAX_RELEASE_BYTES = 16 << 20

/**
 * apt entries: for each suite the signed Release (InRelease, else Release
 * and Release.gpg) verified with the entry's keyring before anything else
 * is read, each Packages index by the sha256 the Release lists (the first
 * of .xz, .gz and none that the mirror has, in apt's order), then the
 * closure of every entry's packages over all of them (closure.ts), per
 * architecture of the entry.
 */
export async function resolveApt(entries: AptOsPackageEntry[], ctx: OsFetchContext): Promise<OsRepositoryPlan[]> {
  const universe = new Map<string, AptUniverse>()
  const metadata: PlannedFile[][] = entries.map(() => [])
  const universeOf = (arch: string) => {
    let u = universe.get(arch)
    if (!u) universe.set(arch, (u = new AptUniverse()))
    return u
  }
  for (const [i, entry] of entries.entries()) {
    const keys = await readPublicKeys(entry.keyring, `${entry.field}.keyring`)
    for (const suite of entry.suites) {
      const release = await readSignedRelease(entry, suite, keys, ctx)
      metadata[i].push(...release.files)
      const parsed = parseRelease(release.text)
      const archs = [...entry.architectures, ...(parsed.architectures.includes('all') ? ['all'] : [])]
      for (const component of entry.components) {
        for (const arch of archs) {
          const base = `${component}/binary-${arch}/Packages`
          const offered = INDEX_COMPRESSIONS.filter((c) => parsed.sha256.has(`${base}${c.suffix}`))
          if (offered.length === 0) {
            if (arch === 'all') continue
            throw new FailureError(
              `${entry.field}: ${redactUrl(entry.url)} suite ${suite}: the Release lists no ${base} index (component ${component}, architecture ${arch})`,
            )
          }
          const index = await fetchIndex(entry, suite, {base, offered, release: parsed}, ctx)
          metadata[i].push(...index.files)
          const stream = await openIndex(index.file, index.compression)
          const targets = arch === 'all' ? entry.architectures : [arch]
          for await (const p of readPackages(stream, i, `${entry.field}: ${index.files[0].url}`))
            for (const a of targets) universeOf(a).add(p)
        }
      }
    }
  }

  // Every entry resolves against every repository; each package is fetched from the one its stanza came from.
  const packages: Map<string, PlannedFile>[] = entries.map(() => new Map())
  for (const entry of entries) {
    for (const arch of entry.architectures) {
      let closure
      try {
        closure = aptClosure(
          universeOf(arch),
          entry.packages.map((name) => ({name})),
          {arch, recommends: entry.recommends},
        )
      } catch (err) {
        if (err instanceof AptResolveError) throw new FailureError(`${entry.field} (${arch}): ${err.message}`)
        throw err
      }
      for (const p of closure) {
        const from = entries[p.repo]
        const why = relativePathProblem(p.filename)
        if (why)
          throw new IntegrityError(
            `${from.field}: package ${p.name} ${p.version}`,
            'a relative Filename',
            `"${p.filename}" (${why})`,
          )
        if (!(p.size >= 0))
          throw new FailureError(`${from.field}: package ${p.name} ${p.version} has no Size in its index`)
        packages[p.repo].set(p.filename, {
          kind: 'os-package',
          url: `${from.url}/${p.filename}`,
          path: `${from.path}/${p.filename}`,
          size: p.size,
          sha256: p.sha256,
          os: {name: p.name, version: p.version, architecture: p.architecture},
        })
      }
    }
  }
  return entries.map((entry, i) => ({
    entry,
    repository: {
      type: 'apt',
      url: entry.url,
      path: entry.path,
      suites: entry.suites,
      components: entry.components,
      architectures: entry.architectures,
      packages: entry.packages,
    },
    metadata: metadata[i],
    packages: [...packages[i].values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
  }))
}

/** The suite's Release text, verified: InRelease when the mirror has it (apt's first choice), else Release with Release.gpg. Both land in the store only once verified. */
async function readSignedRelease(
  entry: AptOsPackageEntry,
  suite: string,
  keys: Awaited<ReturnType<typeof readPublicKeys>>,
  ctx: OsFetchContext,
): Promise<{text: string; files: PlannedFile[]}> {
  const dists = `dists/${suite}`
  const at = (name: string) => ({url: `${entry.url}/${dists}/${name}`, path: `${entry.path}/${dists}/${name}`})
  const what = (name: string) => `${entry.field}: ${redactUrl(at(name).url)}`
  let text = ''
  const inRelease = await ctx.fetchSigned({
    ...at('InRelease'),
    label: what('InRelease'),
    maxBytes: MAX_RELEASE_BYTES,
    optional: true,
    verify: async (bytes) => {
      text = await verifyClearSigned(bytes.toString('utf8'), keys, `${what('InRelease')} (keyring ${entry.keyring})`)
    },
  })
  if (inRelease) return {text, files: [metadataFile(inRelease)]}
  const sig = await ctx.fetchBytes({
    url: at('Release.gpg').url,
    label: what('Release.gpg'),
    maxBytes: MAX_RELEASE_BYTES,
    optional: true,
  })
  if (!sig)
    throw new FailureError(
      `${entry.field}: ${redactUrl(entry.url)} suite ${suite} has neither InRelease nor Release.gpg: an unsigned repository is refused`,
    )
  const release = await ctx.fetchSigned({
    ...at('Release'),
    label: what('Release'),
    maxBytes: MAX_RELEASE_BYTES,
    verify: async (bytes) => {
      await verifyDetached(bytes, sig, keys, `${what('Release')} with Release.gpg (keyring ${entry.keyring})`)
      text = bytes.toString('utf8')
    },
  })
  // The signature was checked above against the Release now in the store.
  const gpg = await ctx.putVerified({...at('Release.gpg'), bytes: sig})
  return {text, files: [metadataFile(release!), metadataFile(gpg)]}
}

function metadataFile(f: {url: string; path: string; sha256: string; size: number}): PlannedFile {
  return {kind: 'os-metadata', url: f.url, path: f.path, sha256: f.sha256, size: f.size}
}

/**
 * An index by the sha256 its Release lists: the first compression the
 * mirror answers for (a 404 tries the next, as apt does), fetched into the
 * store through the verified download; with Acquire-By-Hash also at its
 * by-hash path, where a node's apt then asks for it.
 */
async function fetchIndex(
  entry: AptOsPackageEntry,
  suite: string,
  /** The suite's folder URL, the compressions offered and its parsed Release. */
  from: {base: string; offered: (typeof INDEX_COMPRESSIONS)[number][]; release: ReturnType<typeof parseRelease>},
  ctx: OsFetchContext,
): Promise<{file: string; compression: (typeof INDEX_COMPRESSIONS)[number]['name']; files: PlannedFile[]}> {
  const {base, offered, release} = from
  let lastErr: unknown
  for (const c of offered) {
    const name = `${base}${c.suffix}`
    const sum = release.sha256.get(name)!
    const file = {url: `${entry.url}/dists/${suite}/${name}`, path: `${entry.path}/dists/${suite}/${name}`, ...sum}
    try {
      const stored = await ctx.fetchVerified(
        file,
        `${entry.field}: ${redactUrl(file.url)} (sha256 from the Release of ${suite})`,
      )
      const files: PlannedFile[] = [{kind: 'os-metadata', ...file}]
      if (release.acquireByHash) {
        const dir = name.slice(0, name.lastIndexOf('/'))
        const byHash = {...file, path: `${entry.path}/dists/${suite}/${dir}/by-hash/SHA256/${sum.sha256}`}
        await ctx.fetchVerified(byHash, `${entry.field}: ${redactUrl(file.url)} (by-hash copy)`)
        files.push({kind: 'os-metadata', ...byHash})
      }
      return {file: stored, compression: c.name, files}
    } catch (err) {
      if ((err as {status?: number}).status !== 404) throw err
      lastErr = err
    }
  }
  throw lastErr
}
