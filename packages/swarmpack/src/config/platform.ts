/** The host platform string variants are keyed by, e.g. `linux-x64`, `darwin-arm64`. */
export function hostPlatform (): string {
  return `${process.platform}-${process.arch}`
}

/**
 * Which variant of a release this host installs: the one the config insists on, else the exact
 * platform, else a platform-independent `any`. Undefined when none fits.
 */
export function pickVariant (variants: readonly string[], platform: string, wanted?: string): string | undefined {
  // variant keys are `<platform>` or `<platform>+<variant>` (publish's variantKey); a wanted
  // variant may be named in full or by its variant part alone
  if (wanted !== undefined) return [wanted, `${platform}+${wanted}`, `any+${wanted}`].find(k => variants.includes(k))
  if (variants.includes(platform)) return platform
  if (variants.includes('any')) return 'any'
  return undefined
}
