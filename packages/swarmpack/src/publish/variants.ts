/**
 * Variant keys of a release: the platform (`linux-x64`, `any`), plus `+<variant>` for a build
 * variant (`linux-x64+musl`). Lower case, within trust's variant-key rule.
 */
import { PLATFORM_PATTERN, VARIANT_PATTERN } from '@swarmpack/core'
import { PublishErrorCode, publishError } from './errors.js'

const KEY_RE = /^[a-z0-9][a-z0-9._+-]{0,63}$/

export function variantKey (platform = 'any', variant?: string): string {
  if (!PLATFORM_PATTERN.test(platform)) throw publishError(PublishErrorCode.PUBLISH_INVALID, `invalid platform ${JSON.stringify(platform.slice(0, 80))}`)
  if (variant !== undefined && !VARIANT_PATTERN.test(variant)) throw publishError(PublishErrorCode.PUBLISH_INVALID, `invalid build variant ${JSON.stringify(variant.slice(0, 80))}`)
  const key = variant === undefined ? platform : `${platform}+${variant.toLowerCase()}`
  if (!KEY_RE.test(key)) throw publishError(PublishErrorCode.PUBLISH_INVALID, `variant key ${JSON.stringify(key)} is not a valid release variant key (lower case, at most 64 characters)`)
  return key
}
