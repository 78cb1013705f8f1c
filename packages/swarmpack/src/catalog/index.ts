export { createCatalog, catalogFromVerifier } from './catalog.js'
export type { Catalog, CatalogInit, CatalogSource, SearchQuery, SearchHit, PackageInfo, VersionInfo, VariantInfo } from './catalog.js'
