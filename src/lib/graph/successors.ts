import type {Descriptor} from '../content/descriptor.js'
import {isForeignLayer} from '../content/media-types.js'
import type {ParsedManifest} from './parse.js'

/** How a node reaches a descriptor: the role decides whether it is walked into. */
export type EdgeRole = 'manifest' | 'config' | 'layer' | 'subject'

export interface Edge {
  desc: Descriptor
  role: EdgeRole
  /** Position among the parent's edges of this role (layer 0, 1, ...). */
  index: number
  /**
   * A foreign or non-distributable layer with `urls`: it lives there, not in
   * the registry, so a copy leaves it out and a store or bundle need not
   * hold it (but may).
   */
  optional: boolean
}

/**
 * What a manifest or index points to, in document order: an index's
 * manifests, a manifest's config and layers, and either's `subject` (the
 * manifest a referrer refers to, which must be there before it).
 */
export function successors(node: ParsedManifest): Edge[] {
  const out: Edge[] = []
  if (node.kind === 'index') {
    const list = Array.isArray(node.index.manifests) ? node.index.manifests : []
    list.forEach((desc, index) => out.push({desc, role: 'manifest', index, optional: false}))
  } else {
    const m = node.manifest
    if (m.config) out.push({desc: m.config, role: 'config', index: 0, optional: false})
    const layers = Array.isArray(m.layers) ? m.layers : []
    layers.forEach((desc, index) => out.push({desc, role: 'layer', index, optional: isForeignLayer(desc)}))
  }
  const subject = node.kind === 'index' ? node.index.subject : node.manifest.subject
  if (subject && typeof subject === 'object') out.push({desc: subject, role: 'subject', index: 0, optional: false})
  return out
}

/** Edges to manifests or indexes, which a walk reads and descends into; the rest are blobs. */
export function isManifestEdge(edge: Pick<Edge, 'role'>): boolean {
  return edge.role === 'manifest' || edge.role === 'subject'
}
