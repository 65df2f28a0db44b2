/**
 * The one way repodata XML is read: sax's strict parser, fed chunk by chunk
 * so a primary.xml of hundreds of megabytes never sits whole in memory.
 * sax (isaacs, no dependencies, kept up to date) is the streaming parser
 * most of npm uses; namespaces are left off, so elements keep their prefix
 * (`rpm:entry`).
 */
import {StringDecoder} from 'node:string_decoder'

import sax from 'sax'

export interface XmlHandlers {
  open(name: string, attributes: Record<string, string>): void
  close(name: string, text: string): void
}

/**
 * Parse `source` (bytes, UTF-8). `close` gets the text an element held
 * directly (only kept for elements `keepText` names, to spare memory).
 */
export async function readXml(
  source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  handlers: XmlHandlers,
  keepText: ReadonlySet<string>,
): Promise<void> {
  const parser = sax.parser(true, {trim: false, normalize: false, position: false})
  const stack: string[] = []
  let text = ''
  let keeping = false
  let failure: Error | undefined
  parser.onerror = (e) => {
    failure ??= e
  }
  parser.onopentag = (tag) => {
    stack.push(tag.name)
    keeping = keepText.has(tag.name)
    text = ''
    handlers.open(tag.name, tag.attributes as Record<string, string>)
  }
  parser.ontext = (t) => {
    if (keeping) text += t
  }
  parser.oncdata = (t) => {
    if (keeping) text += t
  }
  parser.onclosetag = (name) => {
    stack.pop()
    handlers.close(name, keeping ? text : '')
    keeping = false
    text = ''
  }
  const decoder = new StringDecoder('utf8')
  for await (const chunk of source) {
    parser.write(typeof chunk === 'string' ? chunk : decoder.write(chunk))
    if (failure) throw failure
  }
  parser.write(decoder.end())
  parser.close()
  if (failure) throw failure
  if (stack.length > 0) throw new Error(`the document ends inside <${stack.at(-1)}>`)
}
