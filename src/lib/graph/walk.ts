import type {Descriptor} from '../content/descriptor.js'
import {ManifestParseError, type ParsedManifest, parseManifestJson} from './parse.js'
import {type Edge, isManifestEdge, successors} from './successors.js'

/**
 * What one walk does at each step; `L` is the walker's own label for a
 * place in the graph (a string for messages, usually).
 */
export interface GraphVisitor<L> {
  /** A descriptor reached (`edge` undefined for the root). False: go no further below it (seen before, or refused). */
  visit(desc: Descriptor, at: L, edge?: Edge): boolean | Promise<boolean>
  /** The bytes of a manifest or index to descend into; undefined to stop there (the visitor reported why). */
  bytes(desc: Descriptor, at: L): Buffer | undefined | Promise<Buffer | undefined>
  /** The bytes are not a manifest or index (`err.reason`): report it or throw. */
  invalid(desc: Descriptor, at: L, err: ManifestParseError): void
  /** A manifest or index read and parsed, with its edges, before they are walked. */
  node?(desc: Descriptor, node: {bytes: Buffer; parsed: ParsedManifest; edges: Edge[]}, at: L): void
  /** The label of a child. */
  label(parent: L, edge: Edge, parentDesc: Descriptor): L
}

/**
 * The one walk of a manifest graph, used by the copier, the bundle plan and
 * verify: from a root, every descriptor its successors() name, manifests
 * read and descended into, blobs visited once per edge. `parallel` walks
 * siblings at once (a copy fetching from a registry); otherwise in document
 * order, so that reports come out the same every time.
 */
export async function walkGraph<L>(
  root: Descriptor,
  at: L,
  v: GraphVisitor<L>,
  opts: {parallel?: boolean} = {},
): Promise<void> {
  const go = async (desc: Descriptor, here: L, edge?: Edge): Promise<void> => {
    if (!(await v.visit(desc, here, edge))) return
    if (edge && !isManifestEdge(edge)) return
    const bytes = await v.bytes(desc, here)
    if (!bytes) return
    let parsed: ParsedManifest
    try {
      parsed = parseManifestJson(bytes, desc.mediaType)
    } catch (err) {
      if (err instanceof ManifestParseError) return v.invalid(desc, here, err)
      throw err
    }
    const edges = successors(parsed)
    v.node?.(desc, {bytes, parsed, edges}, here)
    const next = (e: Edge) => go(e.desc, v.label(here, e, desc), e)
    if (opts.parallel) await Promise.all(edges.map(next))
    else for (const e of edges) await next(e)
  }
  await go(root, at)
}
