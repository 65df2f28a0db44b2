import path from 'node:path'

import {closest} from '../closest.js'
import type {RawProblem} from './manifest-shapes.js'
import {mirroredBase, MirrorPathError} from './mirror-path.js'
import {aptArchitectures, rpmArchitectures} from './os-arch.js'
import type {TreeNode} from './tree.js'
import type {Manifest, OsPackageEntry, SourcePos} from './types.js'
import {PathClaims} from './validate-files.js'
import {ImageSections} from './validate-images.js'

export {checkUrl, type RawProblem} from './manifest-shapes.js'

export const API_VERSION = 'airlock/v1'
export const KIND = 'Manifest'
export const DEFAULT_PLATFORMS = ['linux/amd64']
const NAME = /^[a-z0-9][a-z0-9.-]*$/
/** Debian policy 5.6.1 (package names), with an optional `:arch` qualifier. */
const APT_PACKAGE = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$/
/** rpm names: letters, digits and `._+-`; no spaces, no version. */
const RPM_PACKAGE = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/
/** A suite, component or architecture name (`bookworm`, `bookworm-updates`, `main`, `amd64`); `/` for suites such as `stable/updates`. */
const APT_WORD = /^[A-Za-z0-9][A-Za-z0-9._+-]*(\/[A-Za-z0-9][A-Za-z0-9._+-]*)*$/
const OS_TYPES = ['apt', 'rpm'] as const
const APT_FIELDS = ['type', 'url', 'suites', 'components', 'architectures', 'keyring', 'packages', 'recommends']
const RPM_FIELDS = ['type', 'url', 'gpgKey', 'architectures', 'packages']

/**
 * Check the parsed document against manifest v1 and build the normalized
 * Manifest. Collects every problem instead of stopping at the first one.
 * `dir` is the manifest's folder, for relative `caFile` paths.
 */
export function validateTree(
  root: TreeNode,
  file: string,
  dir: string,
  pos: (off: number) => SourcePos,
): {manifest: Manifest; problems: RawProblem[]} {
  const v = new Validator(dir, pos)
  const manifest = v.document(root, file)
  return {manifest, problems: v.problems}
}

/** The whole document: apiVersion, kind, metadata and spec, with `spec.osPackages`; the other sections are ImageSections' and FileSections'. */
class Validator extends ImageSections {
  document(root: TreeNode, file: string): Manifest {
    const manifest: Manifest = {
      file,
      dir: this.dir,
      name: '',
      platforms: [...DEFAULT_PLATFORMS],
      registries: [],
      referrers: 'all',
      images: [],
      selections: [],
      repositories: [],
      binaries: [],
      packages: [],
    }
    const top = this.map(root, '', 'a mapping with apiVersion, kind, metadata and spec')
    if (!top) return manifest
    const f = this.fields(
      top,
      '',
      ['apiVersion', 'kind', 'metadata', 'spec'],
      ['apiVersion', 'kind', 'metadata', 'spec'],
    )
    const apiVersion = f.apiVersion && this.string(f.apiVersion, 'apiVersion')
    if (apiVersion !== undefined && apiVersion !== API_VERSION) {
      this.add(f.apiVersion!.off, 'apiVersion', `expected "${API_VERSION}", got "${apiVersion}"`)
    }
    const kind = f.kind && this.string(f.kind, 'kind')
    if (kind !== undefined && kind !== KIND) this.add(f.kind!.off, 'kind', `expected "${KIND}", got "${kind}"`)
    if (f.metadata) this.metadata(f.metadata, manifest)
    if (f.spec) this.spec(f.spec, manifest)
    return manifest
  }

  protected metadata(node: TreeNode, m: Manifest): void {
    const map = this.map(node, 'metadata', 'a mapping with name and version')
    if (!map) return
    const f = this.fields(map, 'metadata', ['name', 'version'], ['name'])
    if (f.name) {
      const name = this.string(f.name, 'metadata.name')
      if (name !== undefined) {
        if (!NAME.test(name) || name.length > 253) {
          this.add(
            f.name.off,
            'metadata.name',
            `"${name}" is not a valid name: expected lowercase letters, digits, . and -, starting with a letter or digit`,
          )
        } else {
          m.name = name
        }
      }
    }
    if (f.version) {
      const version = this.string(f.version, 'metadata.version')
      if (version !== undefined) {
        if (version === '') this.add(f.version.off, 'metadata.version', 'expected a non-empty string')
        else m.version = version
      }
    }
  }

  protected spec(node: TreeNode, m: Manifest): void {
    const map = this.map(
      node,
      'spec',
      'a mapping with platforms, registries, referrers, images, repositories, binaries and packages',
    )
    if (!map) return
    const f = this.fields(
      map,
      'spec',
      ['platforms', 'registries', 'referrers', 'images', 'repositories', 'binaries', 'packages', 'osPackages'],
      [],
    )
    if (f.platforms) {
      const platforms = this.platforms(f.platforms, 'spec.platforms', false)
      if (platforms && platforms !== 'all') m.platforms = platforms
    }
    if (f.registries) m.registries = this.registries(f.registries)
    if (f.referrers) m.referrers = this.referrers(f.referrers) ?? m.referrers
    if (f.images) m.images = this.images(f.images, m.platforms)
    m.selections = this.selections
    if (f.repositories) m.repositories = this.repositories(f.repositories, m.platforms)
    const files = new PathClaims(this)
    if (f.binaries) m.binaries = this.urlFiles(f.binaries, 'spec.binaries', 'binary', files)
    files.finish()
    const packages = new PathClaims(this)
    if (f.packages) m.packages = this.packages(f.packages, packages)
    packages.finish()
    packages.clashesWith(files)
    if (f.osPackages) m.osPackages = this.osPackages(f.osPackages, m.platforms)
  }

  /** `spec.osPackages`: apt and rpm repositories and the packages to take from them (docs/os-packages.md). */
  protected osPackages(node: TreeNode, platforms: string[]): OsPackageEntry[] {
    const seq = this.seq(node, 'spec.osPackages', 'a list of {type: apt | rpm, url, packages, ...}')
    if (!seq) return []
    const out: OsPackageEntry[] = []
    /** One URL is one mirrored folder: its entries must agree on how a node checks it. */
    const keyOfUrl = new Map<string, {type: string; key: string; entry: string}>()
    const suites = new Map<string, string>()
    seq.items.forEach((item, i) => {
      const p = `spec.osPackages[${i}]`
      const map = this.map(item, p, 'a mapping with type, url and packages')
      if (!map) return
      const typeNode = map.pairs.find((pair) => pair.key === 'type')?.value
      const typeName = typeNode ? this.string(typeNode, `${p}.type`) : undefined
      if (!typeNode) {
        this.add(map.off, `${p}.type`, 'missing required field "type": expected apt or rpm')
        return
      }
      if (typeName === undefined) return
      if (!(OS_TYPES as readonly string[]).includes(typeName)) {
        const near = closest(typeName, [...OS_TYPES])
        this.add(
          typeNode.off,
          `${p}.type`,
          `unknown type "${typeName}": ${near ? `did you mean "${near}"?` : 'expected apt or rpm'}`,
        )
        return
      }
      const type = typeName as OsPackageEntry['type']
      const f = this.fields(
        map,
        p,
        type === 'apt' ? APT_FIELDS : RPM_FIELDS,
        type === 'apt' ? ['url', 'suites', 'keyring', 'packages'] : ['url', 'gpgKey', 'packages'],
      )
      let ok = true
      const url = f.url ? this.url(f.url, `${p}.url`)?.replace(/\/+$/, '') : undefined
      let base: string | undefined
      if (url !== undefined) {
        try {
          base = mirroredBase(url)
        } catch (error) {
          if (!(error instanceof MirrorPathError)) throw error
          this.add(f.url!.off, `${p}.url`, error.message)
        }
      }
      const packages = f.packages
        ? this.words(f.packages, `${p}.packages`, type === 'apt' ? APT_PACKAGE : RPM_PACKAGE, 'a package name')
        : undefined
      const defaults = type === 'apt' ? aptArchitectures(platforms) : rpmArchitectures(platforms)
      let architectures = f.architectures
        ? this.words(f.architectures, `${p}.architectures`, APT_WORD, 'an architecture')
        : defaults
      if (type === 'rpm' && architectures && !architectures.includes('noarch'))
        architectures = [...architectures, 'noarch']
      if (architectures && architectures.length === 0) {
        this.add(
          map.off,
          `${p}.architectures`,
          `no ${type} architecture for spec.platforms (${platforms.join(', ')}): give architectures`,
        )
        ok = false
      }
      const keyField = type === 'apt' ? 'keyring' : 'gpgKey'
      const keyNode = type === 'apt' ? f.keyring : f.gpgKey
      let key: string | undefined
      if (keyNode) {
        const k = this.string(keyNode, `${p}.${keyField}`)
        if (k === '')
          this.add(keyNode.off, `${p}.${keyField}`, 'expected a file path (OpenPGP public key, binary or armored)')
        else if (k !== undefined) key = path.resolve(this.dir, k)
      }
      if (url !== undefined && key !== undefined) {
        const other = keyOfUrl.get(url)
        if (other && (other.type !== type || other.key !== key)) {
          this.add(
            keyNode!.off,
            `${p}.${keyField}`,
            `${other.entry} names the same url with ${other.type === type ? `another ${keyField}` : `type ${other.type}`}: one repository is checked with one key`,
          )
          ok = false
        } else if (!other) keyOfUrl.set(url, {type, key, entry: p})
      }
      if (!ok || url === undefined || base === undefined || key === undefined || !packages || !architectures) return
      const common = {url, path: base, architectures, packages, field: p, pos: this.pos(map.off)}
      if (type === 'rpm') {
        out.push({type, ...common, gpgKey: key})
        return
      }
      const suiteList = f.suites ? this.words(f.suites, `${p}.suites`, APT_WORD, 'a suite') : undefined
      const components = f.components ? this.words(f.components, `${p}.components`, APT_WORD, 'a component') : ['main']
      let recommends = false
      if (f.recommends) {
        const b = this.boolean(f.recommends, `${p}.recommends`)
        if (b === undefined) return
        recommends = b
      }
      if (!suiteList || !components) return
      for (const [k, suite] of suiteList.entries()) {
        const id = `${url} ${suite}`
        const first = suites.get(id)
        if (first !== undefined) {
          this.add(
            f.suites!.kind === 'seq' ? f.suites!.items[k].off : f.suites!.off,
            `${p}.suites[${k}]`,
            `suite ${suite} of ${url} is also in ${first}: list its packages in one entry`,
          )
          return
        }
        suites.set(id, p)
      }
      out.push({type, ...common, suites: suiteList, components, keyring: key, recommends})
    })
    return out
  }
}
