/**
 * `repodata/repomd.xml`: the index of a repository's metadata files, each
 * with its location, size and checksum. The only file a client fetches
 * unverified by a checksum; its OpenPGP signature is `repomd.xml.asc`, when
 * the repository has one.
 */
import {readXml} from './xml.js'

export interface RepomdData {
  /** primary, filelists, other, primary_db, updateinfo, modules, ... */
  type: string
  /** Relative to the repository's base URL, e.g. `repodata/<sha256>-primary.xml.gz`. */
  location: string
  checksum: {type: string; value: string}
  openChecksum?: {type: string; value: string}
  size?: number
  openSize?: number
}

export interface Repomd {
  revision?: string
  data: RepomdData[]
}

/** Parse repomd.xml. Throws with the reason when it is not one. */
export async function parseRepomd(text: string): Promise<Repomd> {
  const data: RepomdData[] = []
  let revision: string | undefined
  let current: Partial<RepomdData> | undefined
  let checksumType = ''
  let sawRoot = false
  await readXml(
    [text],
    {
      open(name, a) {
        if (name === 'repomd') sawRoot = true
        else if (name === 'data') current = {type: a.type}
        else if (current && name === 'location') current.location = a.href
        else if (current && (name === 'checksum' || name === 'open-checksum')) checksumType = a.type ?? ''
      },
      close(name, t) {
        const value = t.trim()
        if (name === 'revision' && !current) revision = value
        if (!current) return
        if (name === 'checksum') current.checksum = {type: checksumType, value}
        else if (name === 'open-checksum') current.openChecksum = {type: checksumType, value}
        else if (name === 'size') current.size = Number(value)
        else if (name === 'open-size') current.openSize = Number(value)
        else if (name === 'data') {
          const d = current
          current = undefined
          if (!d.type || !d.location || !d.checksum?.value) {
            throw new Error(`a <data> element lacks its type, location or checksum`)
          }
          data.push(d as RepomdData)
        }
      },
    },
    new Set(['revision', 'checksum', 'open-checksum', 'size', 'open-size']),
  )
  if (!sawRoot) throw new Error('not a repomd.xml (no <repomd> element)')
  return {revision, data}
}

/** The entry of one type; undefined when the repository has none. */
export function repomdData(md: Repomd, type: string): RepomdData | undefined {
  return md.data.find((d) => d.type === type)
}
