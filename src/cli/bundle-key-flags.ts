import {Flags} from '@oclif/core'

import {checkBundleSignature, readBundleKey} from '../lib/bundle/format/bundle-signature.js'

/** `--bundle-key`, one definition for verify, every import and serve (apart from `verify --key`, which checks images' signatures). */
export const bundleKeyFlags = {
  'bundle-key': Flags.string({
    description:
      'Take only a bundle signed with the private half of this PEM public key (e.g. cosign.pub): SHA256SUMS.sig must verify SHA256SUMS before anything else is read.',
  }),
}

/** With --bundle-key: the bundle's signature checked first; a missing or bad one is an invalid bundle (exit 2). */
export async function checkBundleKey(dir: string, keyFile: string | undefined): Promise<void> {
  if (keyFile === undefined) return
  await checkBundleSignature(dir, await readBundleKey(keyFile), keyFile)
}
