/**
 * `primary.xml` and `filelists.xml`, read as streams: each package handed on
 * as soon as its element closes, with only what resolving and fetching need
 * (no descriptions, changelogs or file lists beyond what is asked for).
 */
import type {Dep, DepFlag} from './dependency.js'
import type {Evr} from './version.js'
import {readXml} from './xml.js'

export interface RpmPackage {
  name: string
  arch: string
  evr: Required<Evr>
  /** The package file's checksum; its value is the package's id in filelists.xml. */
  checksum: {type: string; value: string}
  /** Relative to the repository's base URL. */
  location: string
  /** `xml:base` of the location: the package lives under another URL (not mirrored). */
  locationBase?: string
  size: number
  provides: Dep[]
  requires: Dep[]
  /** The file paths primary.xml lists (only /etc/*, *bin/* and /usr/lib/sendmail). */
  files: string[]
}

const FLAGS = new Set<DepFlag>(['EQ', 'LT', 'GT', 'LE', 'GE'])

function entryDep(a: Record<string, string>): Dep {
  const dep: Dep = {name: a.name}
  if (a.flags && FLAGS.has(a.flags as DepFlag) && a.ver !== undefined) {
    dep.flags = a.flags as DepFlag
    dep.evr = {epoch: Number(a.epoch ?? 0) || 0, version: a.ver, ...(a.rel === undefined ? {} : {release: a.rel})}
  }
  if (a.pre === '1') dep.pre = true
  return dep
}

/** Stream primary.xml's packages to `onPackage`. */
export async function readPrimary(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  onPackage: (p: RpmPackage) => void,
): Promise<void> {
  let p: RpmPackage | undefined
  let list: Dep[] | undefined
  let checksumType = ''
  await readXml(
    source,
    {
      open(name, a) {
        if (name === 'package') {
          p = {
            name: '',
            arch: '',
            evr: {epoch: 0, version: '', release: ''},
            checksum: {type: '', value: ''},
            location: '',
            size: 0,
            provides: [],
            requires: [],
            files: [],
          }
          return
        }
        if (!p) return
        switch (name) {
          case 'version':
            p.evr = {epoch: Number(a.epoch ?? 0) || 0, version: a.ver ?? '', release: a.rel ?? ''}
            break
          case 'checksum':
            checksumType = a.type ?? ''
            break
          case 'location':
            p.location = a.href ?? ''
            if (a['xml:base']) p.locationBase = a['xml:base']
            break
          case 'size':
            p.size = Number(a.package ?? 0)
            break
          case 'rpm:provides':
            list = p.provides
            break
          case 'rpm:requires':
            list = p.requires
            break
          case 'rpm:entry':
            list?.push(entryDep(a))
            break
        }
      },
      close(name, text) {
        if (!p) return
        switch (name) {
          case 'name':
            p.name = text.trim()
            break
          case 'arch':
            p.arch = text.trim()
            break
          case 'checksum':
            p.checksum = {type: checksumType, value: text.trim()}
            break
          case 'file':
            p.files.push(text.trim())
            break
          case 'rpm:provides':
          case 'rpm:requires':
            list = undefined
            break
          case 'package': {
            const done = p
            p = undefined
            if (!done.name || !done.arch || !done.location || !done.checksum.value) {
              throw new Error(`a <package> lacks its name, arch, location or checksum (${done.name || 'no name'})`)
            }
            onPackage(done)
            break
          }
        }
      },
    },
    new Set(['name', 'arch', 'checksum', 'file']),
  )
}

/**
 * Which packages hold the paths in `wanted`, from filelists.xml: each path
 * to the ids (primary's checksum values) of the packages that list it.
 * Only the wanted paths are kept, so a filelists.xml of every file in a
 * distribution costs its parse time, not its size in memory.
 */
export async function readFilelists(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  wanted: ReadonlySet<string>,
): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>()
  let pkgid: string | undefined
  await readXml(
    source,
    {
      open(name, a) {
        if (name === 'package') pkgid = a.pkgid
      },
      close(name, text) {
        if (name === 'package') pkgid = undefined
        else if (name === 'file' && pkgid && wanted.has(text)) {
          const ids = found.get(text)
          if (ids) ids.push(pkgid)
          else found.set(text, [pkgid])
        }
      },
    },
    new Set(['file']),
  )
  return found
}
